"""The analytics service: every event into ``event_logs`` and hourly figures; the
``/analytics/*`` reports and ``/metrics/health``.

Consumes ``parking.events`` and ``charging.events`` as the durable consumer
``analytics``. One transaction per event: the log row (unique by event id) and every
counter it moves, so a redelivered event counts once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy.exc import SQLAlchemyError

from central.analytics import store
from central.analytics.reports import align, revenue_report, usage_report, vehicle_types_report
from central.analytics.settings import AnalyticsSettings
from central.analytics.usage import Granularity, PeakMetric, peak_hours
from central.auth import require
from central.context import ServiceContext
from central.infra.http_client import ResilientClient, Unavailable
from central.sync.presence import presence
from contract.envelope import CHARGING_TOPIC, PARKING_TOPIC, CloudEvent

log = structlog.get_logger("central.analytics")

DURABLE = "analytics"
QUERY_YEARS = (2, 9998)
SiteQuery = Annotated[str | None, Query(min_length=1, max_length=64)]
FromQuery = Annotated[
    datetime | None,
    Query(alias="from", description="RFC 3339, default: `to` minus the default span"),
]
ToQuery = Annotated[datetime | None, Query(alias="to", description="RFC 3339, default: now")]
TzQuery = Annotated[
    str, Query(max_length=64, description="IANA zone for days, weeks, hours of day")
]


class AnalyticsService:
    name = "analytics"

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._settings: AnalyticsSettings = ctx.settings.analytics
        self._probe: ResilientClient | None = None
        self._clock_policy = ctx.settings.reported_times.policy()

    def router(self) -> APIRouter:
        return _router(self, self._ctx, self._settings)

    async def start(self) -> None:
        resilience = self._ctx.settings.resilience.model_copy(
            update={"timeout_s": self._settings.probe_timeout_s, "retries": 1}
        )
        self._probe = ResilientClient(resilience)
        for topic in (PARKING_TOPIC, CHARGING_TOPIC):
            await self._ctx.bus.subscribe(topic, DURABLE, self.handle)
        log.info("analytics.started")

    async def stop(self) -> None:
        if self._probe is not None:
            await self._probe.aclose()
            self._probe = None

    async def handle(self, event: CloudEvent) -> None:
        """Log the event and move its figures (idempotent by event id)."""
        async with self._ctx.engine.begin() as conn:
            new = await store.ingest(conn, event, self._ctx.clock(), self._clock_policy)
        if not new:
            log.debug("analytics.event.duplicate", event_id=event.id)

    # -- health ----------------------------------------------------------------------

    async def health(self, in_process: Mapping[str, object]) -> dict[str, Any]:
        s, now = self._settings, self._ctx.clock()
        degraded: list[str] = []
        services: dict[str, dict[str, Any]] = {}
        rows: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(s.probe_timeout_s):
                async with self._ctx.engine.connect() as conn:
                    await store.ping(conn)
                    rows = await store.health_rows(conn)
            services[self.name] = {"status": "up", "mode": "in-process"}
        except (SQLAlchemyError, OSError, TimeoutError) as err:
            services[self.name] = {"status": "down", "error": f"database: {type(err).__name__}"}
            degraded.append("analytics database unreachable")
        for name in sorted(in_process):
            if name != self.name:
                services[name] = {"status": "up", "mode": "in-process"}
        remote = {
            name: url
            for name, url in self._ctx.settings.service_urls.items()
            if name not in in_process
        }
        results: dict[str, asyncio.Task[dict[str, Any]]] = {}
        async with asyncio.TaskGroup() as group:
            for name, url in remote.items():
                results[name] = group.create_task(self._probe_service(name, url))
        for name, task in results.items():
            services[name] = task.result()
            if services[name]["status"] != "up":
                degraded.append(f"service {name} is {services[name]['status']}")

        bus: dict[str, Any] = {}
        sites: list[dict[str, Any]] = []
        for row in rows:
            if row["kind"] == "bus":
                topic = row["component"].removeprefix("topic:")
                lag = row["lag_s"]
                bus[topic] = {
                    "events": row["events"],
                    "last_event_time": row["last_event_time"],
                    "last_consumed_at": row["last_seen"],
                    "lag_s": lag,
                    "status": "lagging" if lag is not None and lag > s.bus_lag_warn_s else "ok",
                }
            elif row["kind"] == "site":
                site_id = row["component"].removeprefix("site:")
                # Reachable now: the sync service's record of the edge's last contact
                # (its long poll keeps it fresh); events alone go quiet on a calm site.
                # Without such a record (sync not sharing this cache) events decide.
                reach = await presence(self._ctx.cache, site_id)
                last_contact = reach.last_contact or row["last_seen"]
                silent = (now - last_contact).total_seconds() if last_contact else None
                stale = silent is None or silent > s.site_stale_s
                if reach.last_contact is None:
                    status = "stale" if stale else "online"
                elif reach.online:
                    status = "online"
                else:
                    status = "offline"
                    degraded.append(reach.describe())
                sites.append(
                    {
                        "site_id": site_id,
                        "last_contact": last_contact,
                        "last_event_time": row["last_event_time"],
                        "silent_s": None if silent is None else round(silent, 1),
                        "events": row["events"],
                        "status": status,
                    }
                )
            elif (
                row["kind"] == "service"
                and row["component"].removeprefix("service:") not in services
            ):
                services[row["component"].removeprefix("service:")] = {
                    "status": "unknown",
                    "last_probe": row["last_seen"],
                }
        for topic, info in bus.items():
            if info["status"] == "lagging":
                degraded.append(f"bus topic {topic} lags {info['lag_s']:.0f} s")
        return {
            "status": "degraded" if degraded else "ok",
            "checked_at": now,
            "problems": degraded,
            "services": services,
            "bus": bus,
            "sites": sites,
        }

    async def _probe_service(self, name: str, base_url: str) -> dict[str, Any]:
        assert self._probe is not None, "start() first"
        now = self._ctx.clock()
        try:
            response = await self._probe.request(name, "GET", base_url.rstrip("/") + "/healthz")
        except Unavailable as err:
            result: dict[str, Any] = {"status": "down", "error": err.reason}
        else:
            result = (
                {"status": "up", "mode": "remote"}
                if response.status_code == 200
                else {"status": "down", "error": f"HTTP {response.status_code}"}
            )
        try:
            async with self._ctx.engine.begin() as conn:
                await store.record_probe(conn, name, result["status"], now, result)
        except SQLAlchemyError as err:
            log.warning("analytics.probe.not_recorded", service=name, error=repr(err))
        return result


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise HTTPException(422, f"unknown time zone {tz!r}") from err


def _window(
    lo: datetime | None,
    hi: datetime | None,
    now: datetime,
    default_span: timedelta,
    settings: AnalyticsSettings,
) -> tuple[datetime, datetime]:
    for name, value in (("from", lo), ("to", hi)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"'{name}' needs a UTC offset (RFC 3339)")
        # a year of margin at both ends of datetime for the periods' arithmetic
        if value is not None and not QUERY_YEARS[0] <= value.year <= QUERY_YEARS[1]:
            raise HTTPException(422, f"'{name}' must lie in the years {QUERY_YEARS}")
    end = hi or now
    start = lo or end - default_span
    if start >= end:
        raise HTTPException(422, "'from' must be before 'to'")
    if end - start > timedelta(days=settings.max_range_days):
        raise HTTPException(422, f"the period is limited to {settings.max_range_days} days")
    return align(start, end)


def _router(
    service: AnalyticsService, ctx: ServiceContext, settings: AnalyticsSettings
) -> APIRouter:
    router = APIRouter(tags=["analytics"])
    operator = [Depends(require("operator"))]
    clock: Callable[[], datetime] = ctx.clock

    @router.get("/analytics/usage", dependencies=operator)
    async def usage(
        site_id: SiteQuery = None,
        lo: FromQuery = None,
        hi: ToQuery = None,
        granularity: Granularity = "day",
        tz: TzQuery = "UTC",
    ) -> dict[str, Any]:
        """Occupancy, arrivals, reservations, sessions and energy per site and period."""
        zone, now = _zone(tz), clock()
        start, end = _window(lo, hi, now, timedelta(days=1), settings)
        if granularity == "hour" and end - start > timedelta(hours=settings.max_hour_buckets):
            raise HTTPException(422, "too many hours; use a coarser granularity")
        async with ctx.engine.connect() as conn:
            rows = await store.usage_rows(conn, site_id, start, end)
            slots = await store.slot_counts(conn)
            visits = await store.open_visits(conn, site_id, end)
        sites = usage_report(
            rows,
            slots=slots,
            open_visits=visits,
            lo=start,
            hi=end,
            granularity=granularity,
            zone=zone,
            now=now,
        )
        return {
            "from": start,
            "to": end,
            "granularity": granularity,
            "timezone": tz,
            "sites": sites,
        }

    @router.get("/analytics/revenue", dependencies=operator)
    async def revenue(
        site_id: SiteQuery = None,
        lo: FromQuery = None,
        hi: ToQuery = None,
        granularity: Granularity = "day",
        tz: TzQuery = "UTC",
    ) -> dict[str, Any]:
        """Revenue of completed sessions, priced by the rates in force, per currency."""
        zone = _zone(tz)
        start, end = _window(lo, hi, clock(), timedelta(days=1), settings)
        if granularity == "hour" and end - start > timedelta(hours=settings.max_hour_buckets):
            raise HTTPException(422, "too many hours; use a coarser granularity")
        async with ctx.engine.connect() as conn:
            rows = await store.revenue_rows(conn, site_id, start, end)
        sites = revenue_report(rows, lo=start, hi=end, granularity=granularity, zone=zone)
        return {
            "from": start,
            "to": end,
            "granularity": granularity,
            "timezone": tz,
            "sites": sites,
        }

    @router.get("/analytics/peak-hours", dependencies=operator)
    async def peak(
        site_id: SiteQuery = None,
        lo: FromQuery = None,
        hi: ToQuery = None,
        tz: TzQuery = "UTC",
        metric: PeakMetric = "occupancy",
        top: Annotated[int, Query(ge=1, le=24)] = 3,
    ) -> dict[str, Any]:
        """Average load per local hour of day (occupied slots, sessions, kWh or arrivals)."""
        zone = _zone(tz)
        start, end = _window(lo, hi, clock(), timedelta(days=28), settings)
        async with ctx.engine.connect() as conn:
            rows_by_site = await store.usage_rows(conn, site_id, start, end)
        merged: dict[datetime, dict[str, float]] = {}
        for rows in rows_by_site.values():
            for bucket, counters in rows:
                into = merged.setdefault(bucket, {})
                for name, value in counters.items():
                    into[name] = into.get(name, 0.0) + value
        hours = peak_hours(merged.items(), start=start, end=end, zone=zone, metric=metric)
        return {
            "from": start,
            "to": end,
            "timezone": tz,
            "metric": metric,
            "site_id": site_id,
            "peak_hours": [h["hour"] for h in hours[:top] if h["average"] > 0],
            "hours": sorted(hours, key=lambda h: int(h["hour"])),
        }

    @router.get("/analytics/vehicle-types", dependencies=operator)
    async def vehicle_types(
        site_id: SiteQuery = None, lo: FromQuery = None, hi: ToQuery = None
    ) -> dict[str, Any]:
        """Reservations, visits, sessions and distinct vehicles per vehicle type."""
        start, end = _window(lo, hi, clock(), timedelta(days=30), settings)
        async with ctx.engine.connect() as conn:
            counts = await store.vehicle_type_counts(conn, site_id, start, end)
            vehicles = await store.vehicles_by_type(conn, site_id, start, end)
        return {
            "from": start,
            "to": end,
            "site_id": site_id,
            "types": vehicle_types_report(counts, vehicles),
        }

    @router.get("/metrics/health", dependencies=operator)
    async def health(request: Request) -> dict[str, Any]:
        """Services, bus lag and each site's last contact; ``degraded`` names what is wrong."""
        in_process: Mapping[str, object] = getattr(request.app.state, "services", {}) or {}
        return await service.health(in_process)

    return router
