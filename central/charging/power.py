"""The sites' load management as central sees it (docs/power-central.md).

A site's load manager reports the limit in force whenever a temporary one is set,
removed or expires (``power.limit_changed``) and each charger that refused or ignored its
limit (``power.overshoot``). Both travel on ``charging.events``; the charging service
keeps them because it already consumes that topic, knows the sites' chargers and sends
the sites their commands: ``set_site_limit`` is one more of them, answered like the
others (:mod:`central.charging.commands`).

Both handlers are idempotent: the limit is the one of the site's latest event by its
sequence, an alert is kept once by its event id.
"""

from __future__ import annotations

from typing import Any

import structlog

from central.charging import power_store
from central.charging.commands import Commands
from central.charging.schema import PowerAlert, ReportedLimit, SiteLimitRequest, SitePower
from central.context import ServiceContext
from central.event_routing import EventHandler
from central.infra.paging import Key, page_of
from common.timestamps import format_timestamp
from contract.envelope import CloudEvent
from contract.events import PowerLimitChanged, PowerOvershoot, parse_data

log = structlog.get_logger("central.charging")

ALERTS_KIND = "power_alerts"


class UntilPassed(ValueError):
    """A temporary limit that would end before it begins."""


class SitesPower:
    def __init__(self, ctx: ServiceContext, commands: Commands) -> None:
        self._ctx = ctx
        self._commands = commands

    def handlers(self) -> dict[str, EventHandler]:
        return {
            PowerLimitChanged.TYPE: self._on_limit_changed,
            PowerOvershoot.TYPE: self._on_overshoot,
        }

    async def set_limit(self, site_id: str, body: SiteLimitRequest) -> str:
        """Send the site its ``set_site_limit`` command; :class:`UntilPassed` for an end
        not in the future."""
        if body.until is not None and body.until <= self._ctx.clock():
            raise UntilPassed("until must be in the future")
        payload: dict[str, Any] = {
            "site_limit_kw": body.site_limit_kw,
            "until": None if body.until is None else format_timestamp(body.until),
        }
        return await self._commands.issue(
            site_id, "set_site_limit", payload, charger_id=None, vehicle_id=None
        )

    async def document(self, site_id: str, limit: int, start: Key | None) -> SitePower:
        async with self._ctx.engine.connect() as conn:
            row = await power_store.limit(conn, site_id)
            rows = await power_store.alerts(conn, site_id, limit, start)
        items = [PowerAlert.model_validate(r._mapping) for r in rows[:limit]]
        alerts = page_of(items, rows, limit, ALERTS_KIND, lambda r: (r.at, r.id))
        reported = None
        if row is not None:
            expired = row.until is not None and row.until <= self._ctx.clock()
            reported = ReportedLimit.model_validate({**row._mapping, "expired": expired})
        return SitePower(site_id=site_id, limit=reported, alerts=alerts)

    async def _on_limit_changed(self, event: CloudEvent) -> None:
        data = parse_data(PowerLimitChanged, event)
        async with self._ctx.engine.begin() as conn:
            newer = await power_store.save_limit(conn, event, data)
        if newer:
            log.info("charging.power.limit_changed", site=event.site_id,
                     limit_kw=data.limit_kw, until=data.until, by=data.set_by)  # fmt: skip

    async def _on_overshoot(self, event: CloudEvent) -> None:
        data = parse_data(PowerOvershoot, event)
        async with self._ctx.engine.begin() as conn:
            new = await power_store.add_alert(conn, event, data)
        if new:
            log.warning("charging.power.overshoot", site=event.site_id,
                        charger=data.charger_id, reason=data.reason)  # fmt: skip
