"""The analytics service's HTTP API (operators only): usage, revenue, peak hours, vehicle
types, health. Every report is computed from the hourly rows (:mod:`central.analytics.store`,
:mod:`central.analytics.reports`) over a period widened to whole hours; bad input is a
clear 422.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from central.analytics import store
from central.analytics.health import Health
from central.analytics.reports import align, revenue_report, usage_report, vehicle_types_report
from central.analytics.settings import AnalyticsSettings
from central.analytics.usage import Granularity, PeakMetric, peak_hours
from central.auth import require
from central.context import ServiceContext

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


def _periods_window(
    lo: datetime | None,
    hi: datetime | None,
    now: datetime,
    granularity: Granularity,
    settings: AnalyticsSettings,
) -> tuple[datetime, datetime]:
    """The window of a report by period (default: the last day); by the hour, at most
    ``max_hour_buckets`` of them."""
    start, end = _window(lo, hi, now, timedelta(days=1), settings)
    if granularity == "hour" and end - start > timedelta(hours=settings.max_hour_buckets):
        raise HTTPException(422, "too many hours; use a coarser granularity")
    return start, end


def _by_period(
    start: datetime, end: datetime, granularity: Granularity, tz: str, sites: list[Any]
) -> dict[str, Any]:
    return {"from": start, "to": end, "granularity": granularity, "timezone": tz, "sites": sites}


def make_router(ctx: ServiceContext, settings: AnalyticsSettings, checks: Health) -> APIRouter:
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
        start, end = _periods_window(lo, hi, now, granularity, settings)
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
        return _by_period(start, end, granularity, tz, sites)

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
        start, end = _periods_window(lo, hi, clock(), granularity, settings)
        async with ctx.engine.connect() as conn:
            rows = await store.revenue_rows(conn, site_id, start, end)
        sites = revenue_report(rows, lo=start, hi=end, granularity=granularity, zone=zone)
        return _by_period(start, end, granularity, tz, sites)

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
        return await checks.report(in_process)

    return router
