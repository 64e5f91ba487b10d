"""Sessions as the API shows them: each priced by :mod:`central.pricing` with its site's
rate, a live one up to now.

The times are shown as the site reported them; the price uses only the times central
believes (:func:`central.pricing.price_reported_session`): a completed session's were
judged when central stored it (its ``updated_at``), a live one's are judged now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from central.charging import store
from central.charging.rates import rate_for
from central.charging.schema import (
    SessionAnswer,
    VehicleStatus,
    command_answer,
    failure_answer,
    session_answer,
)
from central.context import ServiceContext
from central.infra.paging import Page, page_of, parse_cursor
from central.pricing import price_reported_session


class Sessions:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._clock_policy = ctx.settings.reported_times.policy()

    async def _answer(self, conn: AsyncConnection, row: Any) -> SessionAnswer:
        rate = await rate_for(conn, row.site_id)
        if rate is None:
            return session_answer(row, None)
        now = self._ctx.clock()
        cost, _problem = price_reported_session(
            rate,
            row.started_at,
            row.stopped_at or now,
            row.energy_wh,
            row.charging_ended_at,
            received=row.updated_at if row.stopped_at else now,
            policy=self._clock_policy,
        )
        return session_answer(row, cost)

    async def vehicle_status(self, vehicle_id: str) -> VehicleStatus:
        """The vehicle's live session (energy and cost so far), its pending commands and
        the latest charge of it that failed."""
        now = self._ctx.clock()
        async with self._ctx.engine.connect() as conn:
            session = await store.active_session(conn, vehicle_id=vehicle_id)
            pending = await store.pending_commands(conn, vehicle_id, now)
            answer = None if session is None else await self._answer(conn, session)
            failure = await store.last_failure(conn, vehicle_id)
        return VehicleStatus(
            vehicle_id=vehicle_id,
            charging=answer is not None,
            session=answer,
            pending_commands=[command_answer(r, now) for r in pending],
            last_failure=None if failure is None else failure_answer(failure),
        )

    async def history(
        self, vehicle_id: str, limit: int, cursor: str | None = None
    ) -> Page[SessionAnswer]:
        """The vehicle's finished sessions, newest first."""
        return await self.page(limit, cursor, vehicle_id=vehicle_id, finished=True, kind="history")

    async def page(
        self,
        limit: int,
        cursor: str | None,
        *,
        site_id: str | None = None,
        charger_id: str | None = None,
        vehicle_id: str | None = None,
        status: str | None = None,
        finished: bool = False,
        kind: str = "sessions",
    ) -> Page[SessionAnswer]:
        """Sessions newest first (by start, then id), ``limit`` a page."""
        start = parse_cursor(kind, cursor, (datetime, str))
        async with self._ctx.engine.connect() as conn:
            rows = await store.sessions(
                conn,
                limit,
                start,
                site_id=site_id,
                charger_id=charger_id,
                vehicle_id=vehicle_id,
                status=status,
                finished=finished,
            )
            items = [await self._answer(conn, r) for r in rows[:limit]]
        return page_of(items, rows, limit, kind, lambda r: (r.started_at, r.id))
