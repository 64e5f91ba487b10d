"""From events to hourly usage counters, and from counters to the API's figures. No I/O."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from central.analytics import event_data
from central.analytics.buckets import HOUR, hour_floor, hours_between, split_by_hour
from central.reported_times import (
    DEFAULT_POLICY,
    ClockPolicy,
    Span,
    anchor,
    bounded_span,
    reported_amount,
)
from contract.envelope import CloudEvent

#: The counters kept per site and hour in ``usage_metrics``.
USAGE_FIELDS: Final[tuple[str, ...]] = (
    "reservations",
    "releases",
    "arrivals",
    "departures",
    "occupied_seconds",
    "sessions_started",
    "sessions_completed",
    "sessions_failed",
    "charging_seconds",
    "energy_wh",
    "clock_problems",
)


@dataclass(frozen=True)
class UsageDelta:
    site_id: str
    bucket: datetime
    counter: str
    amount: float
    problem: str | None = None  # what a ``clock_problems`` delta corrected


def session_energy(event: CloudEvent) -> float:
    """A completed session's energy (Wh) as the charging service counts it: what a meter
    cannot have delivered (not a number, negative, beyond 2.1 GWh) is 0."""
    energy = reported_amount(event_data.number(event, "energy_wh"))
    return float(energy) if energy is not None and energy > 0 else 0.0


def _spread(site: str, counter: str, span: Span, total: float) -> list[UsageDelta]:
    parts = split_by_hour(span.start, span.end)
    length = sum(seconds for _, seconds in parts)
    if length <= 0:
        return [UsageDelta(site, hour_floor(span.end), counter, total)]
    return [
        UsageDelta(site, bucket, counter, total * seconds / length) for bucket, seconds in parts
    ]


def usage_deltas(
    event: CloudEvent, received: datetime, policy: ClockPolicy = DEFAULT_POLICY
) -> list[UsageDelta]:
    """The counters one event moves. Unknown types move nothing; a field that is missing
    or does not fit its contract type is left out (:mod:`central.analytics.event_data`).

    Reported times are placed by :mod:`central.reported_times` (``received``: when
    central got the event); each one corrected adds a ``clock_problems`` count.
    """
    site = event.site_id
    deltas: list[UsageDelta] = []

    def at(key: str) -> datetime:
        return event_data.instant(event, key) or event.time

    def noted(problem: str | None, when: datetime) -> None:
        if problem is not None:
            deltas.append(UsageDelta(site, hour_floor(when), "clock_problems", 1, problem))

    def one(counter: str, when: datetime) -> list[UsageDelta]:
        placed = anchor(when, received, policy)
        noted(placed.problem, placed.at)
        return [UsageDelta(site, hour_floor(placed.at), counter, 1)]

    def span(start: datetime, end: datetime) -> Span:
        placed = bounded_span(start, end, received, policy)
        noted(placed.problem, placed.end)
        return placed

    match event.type:
        case "parking.reserved":
            deltas += one("reservations", event.time)
        case "parking.released":
            deltas += one("releases", event.time)
        case "parking.occupied":
            deltas += one("arrivals", at("arrived_at"))
        case "parking.vacated":
            departed = at("departed_at")
            arrived = event_data.instant(event, "arrived_at")
            if arrived is None:
                deltas += one("departures", departed)
            else:
                visit = span(arrived, departed)
                deltas.append(UsageDelta(site, hour_floor(visit.end), "departures", 1))
                if visit.seconds > 0:
                    deltas += _spread(site, "occupied_seconds", visit, visit.seconds)
        case "charging.started":
            deltas += one("sessions_started", at("started_at"))
        case "charging.completed":
            stopped = at("stopped_at")
            session = span(event_data.instant(event, "started_at") or stopped, stopped)
            deltas.append(UsageDelta(site, hour_floor(session.end), "sessions_completed", 1))
            if session.seconds > 0:
                deltas += _spread(site, "charging_seconds", session, session.seconds)
            energy = session_energy(event)
            if energy > 0:
                deltas += _spread(site, "energy_wh", session, energy)
        case "charging.failed":
            deltas += one("sessions_failed", event.time)
    return deltas


def merge(deltas: Iterable[UsageDelta]) -> dict[tuple[str, datetime], dict[str, float]]:
    """Sum deltas per (site, bucket) so each row is written once."""
    rows: dict[tuple[str, datetime], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for delta in deltas:
        rows[(delta.site_id, delta.bucket)][delta.counter] += delta.amount
    return {key: dict(value) for key, value in rows.items()}


Granularity = Literal["hour", "day", "week", "month", "total"]


def period_start(at: datetime, granularity: Granularity, zone: ZoneInfo) -> datetime:
    """The start (in ``zone``) of the period holding ``at``."""
    local = at.astimezone(zone)
    if granularity == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "day":
        return day
    if granularity == "week":
        return (day - timedelta(days=day.weekday())).replace(tzinfo=zone)
    if granularity == "month":
        return day.replace(day=1)
    raise ValueError(granularity)


def occupied_overlap(
    visits: Iterable[tuple[datetime, datetime | None]], lo: datetime, hi: datetime, now: datetime
) -> float:
    """Seconds of ``[lo, hi)`` the open visits (arrived, no departure yet) cover until ``now``."""
    total = 0.0
    for arrived, departed in visits:
        end = min(departed or now, hi, now)
        start = max(arrived, lo)
        if end > start:
            total += (end - start).total_seconds()
    return total


def usage_figures(totals: Mapping[str, float], seconds: float, slots: int) -> dict[str, Any]:
    """The API's figures for one site and period from its summed counters."""
    occupied = totals.get("occupied_seconds", 0.0)
    started = totals.get("sessions_started", 0.0)
    completed = totals.get("sessions_completed", 0.0)
    failed = totals.get("sessions_failed", 0.0)
    return {
        "reservations": int(totals.get("reservations", 0)),
        "releases": int(totals.get("releases", 0)),
        "arrivals": int(totals.get("arrivals", 0)),
        "departures": int(totals.get("departures", 0)),
        "occupied_slot_hours": round(occupied / 3600, 3),
        "slots_seen": slots,
        "occupancy": round(occupied / (slots * seconds), 4) if slots and seconds > 0 else None,
        "sessions": {
            "started": int(started),
            "completed": int(completed),
            "failed": int(failed),
            "success_rate": round(completed / (completed + failed), 4)
            if completed + failed
            else None,
        },
        "charging_hours": round(totals.get("charging_seconds", 0.0) / 3600, 3),
        "energy_kwh": round(totals.get("energy_wh", 0.0) / 1000, 3),
        "clock_problems": int(totals.get("clock_problems", 0)),
    }


PeakMetric = Literal["occupancy", "sessions", "energy", "arrivals"]
_PEAK_COUNTER: Final[dict[str, str]] = {
    "occupancy": "occupied_seconds",
    "sessions": "sessions_started",
    "energy": "energy_wh",
    "arrivals": "arrivals",
}


def peak_hours(
    rows: Iterable[tuple[datetime, Mapping[str, float]]],
    *,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    metric: PeakMetric,
) -> list[dict[str, Any]]:
    """Average ``metric`` per local hour of day over ``[start, end)``, busiest first.

    Averages divide by how often each local hour occurs in the period, so quiet hours
    with no rows still count. Occupancy is in average occupied slots, energy in kWh.
    """
    counter = _PEAK_COUNTER[metric]
    occurrences: dict[int, int] = defaultdict(int)
    for bucket in hours_between(start, end):
        occurrences[bucket.astimezone(zone).hour] += 1
    sums: dict[int, float] = defaultdict(float)
    for bucket, counters in rows:
        if start <= bucket < end:
            sums[bucket.astimezone(zone).hour] += counters.get(counter, 0.0)
    scale = {"occupied_seconds": HOUR.total_seconds(), "energy_wh": 1000.0}.get(counter, 1.0)
    result = [
        {"hour": hour, "average": round(sums[hour] / scale / count, 4), "total": sums[hour] / scale}
        for hour, count in occurrences.items()
    ]
    result.sort(key=lambda item: (-item["average"], item["hour"]))
    return result
