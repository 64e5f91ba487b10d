"""The charger page's log requests (docs/diagnostics.md): the newest few, as the API
shows them."""

from __future__ import annotations

from typing import Any, Final

from edge.core import logs
from edge.services.site import Site

SHOWN: Final = 10


async def log_requests(site: Site, charger_id: str) -> list[dict[str, Any]]:
    now = site.clock()
    found = await site.logs.of_charger(charger_id, SHOWN)
    return [logs.document(r, now) for r in found[:SHOWN]]
