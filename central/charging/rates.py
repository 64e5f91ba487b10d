"""A site's rates: stored (``charging_rates``), cached for the API's reads, sent to the site.

An operator's new rates replace the site's row, drop every cached page and go to the
site as an ``update_rates`` command (the edge shows them; analytics learns them from the
site's answer). Sessions are priced by :mod:`central.pricing` with the rate of their
site as stored now (:func:`rate_for`).
"""

from __future__ import annotations

import json
from typing import Final

from sqlalchemy.ext.asyncio import AsyncConnection

from central.charging import store
from central.charging.commands import Commands
from central.charging.schema import RateModel, SiteRate, site_rate
from central.context import ServiceContext
from central.infra.paging import Page, page_of, parse_cursor
from central.pricing import Rate

CACHE_KEY: Final = "charging:rates:"


async def rate_for(conn: AsyncConnection, site_id: str) -> Rate | None:
    """The site's rate for the pricing engine; None for a site without one."""
    row = await store.rate(conn, site_id)
    return None if row is None else site_rate(row).to_rate()


class Rates:
    def __init__(self, ctx: ServiceContext, commands: Commands) -> None:
        self._ctx = ctx
        self._commands = commands

    async def page(
        self, site_id: str | None, limit: int = 100, cursor: str | None = None
    ) -> Page[SiteRate]:
        start = parse_cursor("rates", cursor, (str,))
        key = f"{CACHE_KEY}{site_id or '*'}:{limit}:{cursor or ''}"
        cached = await self._ctx.cache.get(key)
        if cached is not None:
            return Page[SiteRate].model_validate(cached)
        async with self._ctx.engine.connect() as conn:
            rows = await store.rates(conn, site_id, limit, start)
        answer = page_of([site_rate(r) for r in rows], rows, limit, "rates", lambda r: (r.site_id,))
        await self._ctx.cache.set(
            key, answer.model_dump(mode="json"), ttl=self._ctx.settings.rates_cache_ttl_s
        )
        return answer

    async def put(self, site_id: str, body: RateModel) -> SiteRate:
        """Replace the site's rates and send them to the site."""
        values = {
            "currency": body.currency,
            "energy_price_per_kwh": str(body.energy_price_per_kwh),
            "parking_price_per_hour": str(body.parking_price_per_hour),
            "idle_fee_per_minute": str(body.idle_fee_per_minute),
            "idle_grace_minutes": body.idle_grace_minutes,
            "timezone": body.timezone,
            "tou_windows": json.dumps([w.model_dump(mode="json") for w in body.tou_windows]),
            "updated_at": self._ctx.clock(),
        }
        async with self._ctx.engine.begin() as conn:
            row = await store.put_rate(conn, site_id, values)
        await self._ctx.cache.delete_prefix(CACHE_KEY)
        answer = site_rate(row)
        await self._commands.issue(
            site_id,
            "update_rates",
            {"rates": [answer.model_dump(mode="json")]},
            charger_id=None,
            vehicle_id=None,
        )
        return answer
