"""The analytics API's answers, computed from stored rows. No I/O."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from central.analytics.buckets import HOUR, hour_floor
from central.analytics.revenue import UNPRICED
from central.analytics.usage import (
    USAGE_FIELDS,
    Granularity,
    occupied_overlap,
    period_start,
    usage_figures,
)


def align(lo: datetime, hi: datetime) -> tuple[datetime, datetime]:
    """The hour buckets covering ``[lo, hi)``: floor the start, ceil the end."""
    start, end = hour_floor(lo), hour_floor(hi)
    return start, end if end == hi.astimezone(end.tzinfo) else end + HOUR


def period_end(start: datetime, granularity: Granularity, zone: ZoneInfo, hi: datetime) -> datetime:
    local = start.astimezone(zone)
    if granularity == "total":
        return hi
    if granularity == "hour":
        return start + HOUR
    if granularity == "day":
        nxt = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), zone)
    elif granularity == "week":
        nxt = datetime.combine(local.date() + timedelta(days=7), datetime.min.time(), zone)
    else:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        nxt = local.replace(year=year, month=month, day=1)
    return nxt


def period_keys(
    lo: datetime, hi: datetime, granularity: Granularity, zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """Every period of ``[lo, hi)``, clipped to it, so a quiet period shows as zeros."""
    if granularity == "total":
        return [(lo, hi)]
    keys = []
    start = period_start(lo, granularity, zone)
    while start < hi:
        end = period_end(start, granularity, zone, hi)
        keys.append((max(start, lo), min(end, hi)))
        start = end
    return keys


def period_of(
    bucket: datetime, lo: datetime, hi: datetime, granularity: Granularity, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    start = lo if granularity == "total" else period_start(bucket, granularity, zone)
    return max(start, lo), min(period_end(start, granularity, zone, hi), hi)


def periods(
    rows: Iterable[tuple[datetime, Mapping[str, float]]],
    *,
    lo: datetime,
    hi: datetime,
    granularity: Granularity,
    zone: ZoneInfo,
) -> dict[tuple[datetime, datetime], dict[str, float]]:
    """Counter sums per period (keys: start, end clipped to ``[lo, hi)``)."""
    found = {
        key: dict.fromkeys(USAGE_FIELDS, 0.0) for key in period_keys(lo, hi, granularity, zone)
    }
    for bucket, counters in rows:
        key = period_of(bucket, lo, hi, granularity, zone)
        sums = found.setdefault(key, dict.fromkeys(USAGE_FIELDS, 0.0))
        for name, value in counters.items():
            sums[name] = sums.get(name, 0.0) + value
    return dict(sorted(found.items()))


def usage_report(
    rows_by_site: Mapping[str, list[tuple[datetime, dict[str, float]]]],
    *,
    slots: Mapping[str, int],
    open_visits: Mapping[str, list[tuple[datetime, datetime | None]]],
    lo: datetime,
    hi: datetime,
    granularity: Granularity,
    zone: ZoneInfo,
    now: datetime,
) -> list[dict[str, Any]]:
    sites = []
    for site_id in sorted(set(rows_by_site) | set(open_visits)):
        rows = rows_by_site.get(site_id, [])
        visits = open_visits.get(site_id, [])
        slot_count = slots.get(site_id, 0)
        series = []
        for (start, end), sums in periods(
            rows, lo=lo, hi=hi, granularity=granularity, zone=zone
        ).items():
            sums = dict(sums)
            sums["occupied_seconds"] += occupied_overlap(visits, start, end, now)
            figures = usage_figures(sums, (end - start).total_seconds(), slot_count)
            series.append({"start": start, "end": end, **figures})
        totals: dict[str, float] = defaultdict(float)
        for _bucket, counters in rows:
            for name, value in counters.items():
                totals[name] += value
        totals["occupied_seconds"] += occupied_overlap(visits, lo, hi, now)
        sites.append(
            {
                "site_id": site_id,
                "occupied_now": len(visits),
                "totals": usage_figures(totals, (hi - lo).total_seconds(), slot_count),
                "periods": series,
            }
        )
    return sites


def money(minor: int) -> str:
    return str((Decimal(minor) / 100).quantize(Decimal("0.01")))


def revenue_report(
    rows: Iterable[Mapping[str, Any]],
    *,
    lo: datetime,
    hi: datetime,
    granularity: Granularity,
    zone: ZoneInfo,
) -> list[dict[str, Any]]:
    """Per site and currency: totals and a series; unpriced sessions counted apart."""
    fields = ("sessions", "energy_wh", "energy_minor", "time_minor", "idle_minor", "fee_minor")
    by_site: dict[str, dict[str, Any]] = {}
    for row in rows:
        site = by_site.setdefault(
            row["site_id"], {"site_id": row["site_id"], "unpriced_sessions": 0, "currencies": {}}
        )
        if row["currency"] == UNPRICED:
            site["unpriced_sessions"] += row["sessions"]
            continue
        currency = site["currencies"].setdefault(
            row["currency"],
            {
                "totals": dict.fromkeys(fields, 0),
                "periods": {
                    key: dict.fromkeys(fields, 0) for key in period_keys(lo, hi, granularity, zone)
                },
            },
        )
        key = period_of(row["bucket"], lo, hi, granularity, zone)
        period = currency["periods"].setdefault(key, dict.fromkeys(fields, 0))
        for name in fields:
            currency["totals"][name] += row[name]
            period[name] += row[name]

    def figures(sums: Mapping[str, Any]) -> dict[str, Any]:
        total = sum(sums[f] for f in ("energy_minor", "time_minor", "idle_minor", "fee_minor"))
        return {
            "sessions": int(sums["sessions"]),
            "energy_kwh": round(sums["energy_wh"] / 1000, 3),
            "energy": money(sums["energy_minor"]),
            "time": money(sums["time_minor"]),
            "idle": money(sums["idle_minor"]),
            "session_fees": money(sums["fee_minor"]),
            "total": money(total),
            "total_minor": int(total),
        }

    result = []
    for site_id in sorted(by_site):
        site = by_site[site_id]
        currencies = []
        for code in sorted(site["currencies"]):
            entry = site["currencies"][code]
            currencies.append(
                {
                    "currency": code,
                    **figures(entry["totals"]),
                    "periods": [
                        {"start": start, "end": end, **figures(sums)}
                        for (start, end), sums in sorted(entry["periods"].items())
                    ],
                }
            )
        result.append(
            {
                "site_id": site_id,
                "unpriced_sessions": site["unpriced_sessions"],
                "currencies": currencies,
            }
        )
    return result


def vehicle_types_report(
    counts: Iterable[tuple[str, str, int, int]], vehicles: Mapping[str, int]
) -> list[dict[str, Any]]:
    per_type: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for vehicle_type, event_type, events, _distinct in counts:
        key = {
            "parking.reserved": "reservations",
            "parking.occupied": "visits",
            "charging.started": "sessions",
        }[event_type]
        per_type[vehicle_type][key] += events
    all_events = sum(sum(v.values()) for v in per_type.values())
    result: list[dict[str, Any]] = [
        {
            "vehicle_type": vehicle_type,
            "reservations": numbers.get("reservations", 0),
            "visits": numbers.get("visits", 0),
            "sessions": numbers.get("sessions", 0),
            "vehicles": vehicles.get(vehicle_type, 0),
            "share": round(sum(numbers.values()) / all_events, 4) if all_events else 0.0,
        }
        for vehicle_type, numbers in per_type.items()
    ]
    result.sort(key=lambda item: (-item["share"], item["vehicle_type"]))
    return result
