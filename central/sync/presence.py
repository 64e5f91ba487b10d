"""Whether a site is reachable now: the sync service records each contact of a site's
edge in the shared cache; other services read it to answer promptly for an offline site.

An edge that is up holds a long poll open (``GET /sync/v1/commands?wait=``) almost all
the time; the sync service refreshes the site's entry while the poll lasts and the edge
is still connected, so the entry lapses ``offline_after_s`` seconds after the edge went
away (killed, uplink down). The cache is the shared one (in process, or Redis at scale):
presence is short-lived state, not a table another service would read.

The key ``sync:contact:<site_id>`` holds the last contact as RFC 3339 text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from central.infra.cache import Cache
from central.settings import CentralSettings
from common.timestamps import timestamp_or_none

KEY: Final = "sync:contact:"
SEEN_KEY: Final = "sync:seen:"
SEEN_TTL_S: Final = 30 * 24 * 3600.0


def offline_after(settings: CentralSettings) -> float:
    """Seconds without contact after which a site counts as offline."""
    return settings.site_offline_after_s


@dataclass(frozen=True)
class Presence:
    site_id: str
    online: bool
    last_contact: datetime | None  # None: not in the last 30 days (or central's cache is new)

    def describe(self) -> str:
        if self.online:
            return f"site {self.site_id} is online"
        if self.last_contact is None:
            return f"site {self.site_id} has not been in contact with central recently"
        return f"site {self.site_id} is offline (last contact {self.last_contact.isoformat()})"


async def record_contact(
    cache: Cache, settings: CentralSettings, site_id: str, now: datetime
) -> None:
    stamp = now.isoformat()
    await cache.set(KEY + site_id, stamp, ttl=offline_after(settings))
    await cache.set(SEEN_KEY + site_id, stamp, ttl=SEEN_TTL_S)


async def presence(cache: Cache, site_id: str) -> Presence:
    online = await cache.get(KEY + site_id)
    seen = await cache.get(SEEN_KEY + site_id)
    return Presence(site_id, online is not None, timestamp_or_none(seen))
