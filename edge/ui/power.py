"""The site's power over time: the sum of each running session's latest power reading,
per time bucket (5 minutes by default), from the ``meter_values`` table.

:func:`power_series` is the pure part: a session's last reading counts at a bucket's end
while it is at most ``hold`` old and the session has not stopped. :func:`load_samples`
hands it at most one sample per session and bucket (the last), so the work stays small
however often chargers send meter values. :func:`limit_series` gives the site limit in
force over the same buckets, from the ``power.limit_changed`` events the site keeps.
:func:`chart` lays the series out as SVG paths.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from common.timestamps import format_timestamp
from edge.storage.site_sql import parse_iso

BUCKET = timedelta(minutes=5)
HOLD = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class PowerSample:
    at: datetime
    key: str  # a session id, or "charger/evse" for readings outside sessions
    power_w: float


@dataclass(frozen=True, slots=True)
class PowerPoint:
    at: datetime  # the bucket's end
    power_w: float


def bucket_ends(start: datetime, end: datetime, bucket: timedelta = BUCKET) -> list[datetime]:
    """Ends of the buckets covering (start, end]: aligned to ``bucket``, the last is ``end``."""
    epoch = datetime(2000, 1, 1, tzinfo=start.tzinfo)
    first = epoch + ((start - epoch) // bucket + 1) * bucket
    ends: list[datetime] = []
    moment = first
    while moment < end:
        ends.append(moment)
        moment += bucket
    ends.append(end)
    return ends


def power_series(
    samples: Iterable[PowerSample],
    stops: Mapping[str, datetime],
    ends: Sequence[datetime],
    hold: timedelta = HOLD,
) -> list[PowerPoint]:
    """Total power at each of ``ends`` (ascending)."""
    ordered = sorted(samples, key=lambda s: s.at)
    latest: dict[str, PowerSample] = {}
    points: list[PowerPoint] = []
    i = 0
    for end in ends:
        while i < len(ordered) and ordered[i].at <= end:
            latest[ordered[i].key] = ordered[i]
            i += 1
        total = 0.0
        for key, sample in latest.items():
            stopped = stops.get(key)
            if end - sample.at <= hold and (stopped is None or stopped > end):
                total += max(sample.power_w, 0.0)
        points.append(PowerPoint(end, total))
    return points


def load_samples(
    conn: sqlite3.Connection, since: datetime, until: datetime, bucket: timedelta = BUCKET
) -> tuple[list[PowerSample], dict[str, datetime]]:
    """The last power reading per session and bucket, and when those sessions stopped."""
    seconds = max(1, int(bucket.total_seconds()))
    rows = conn.execute(
        "SELECT COALESCE(session_id, charger_id || '/' || evse_id) AS k, "
        "CAST(strftime('%s', at) AS INTEGER) / ? AS b, at, power_w, MAX(id) "
        "FROM meter_values WHERE at >= ? AND at <= ? AND power_w IS NOT NULL GROUP BY k, b",
        (seconds, format_timestamp(since), format_timestamp(until)),
    ).fetchall()
    samples = [
        PowerSample(at, row["k"], float(row["power_w"]))
        for row in rows
        if (at := parse_iso(row["at"])) is not None
    ]
    stops = {
        row["id"]: stopped
        for row in conn.execute(
            "SELECT id, stopped_at FROM sessions WHERE stopped_at >= ?", (format_timestamp(since),)
        )
        if (stopped := parse_iso(row["stopped_at"])) is not None
    }
    return samples, stops


def limit_series(
    before_w: float, changes: Sequence[PowerPoint], ends: Sequence[datetime]
) -> list[PowerPoint]:
    """The limit in force at each of ``ends``: ``before_w`` until the first of ``changes``
    (ascending), then each change's limit from its time on."""
    points: list[PowerPoint] = []
    current, i = before_w, 0
    for end in ends:
        while i < len(changes) and changes[i].at <= end:
            current = changes[i].power_w
            i += 1
        points.append(PowerPoint(end, current))
    return points


def site_limit(
    conn: sqlite3.Connection, now: datetime, hours: float, before_w: float,
    bucket: timedelta = BUCKET,
) -> list[PowerPoint]:  # fmt: skip
    """The site limit in force over the last ``hours``; ``before_w`` (the configured limit)
    before the oldest change the site still holds."""
    start = now - timedelta(hours=hours)
    rows = conn.execute(
        "SELECT time, data FROM outbox WHERE type = 'power.limit_changed' AND time <= ? "
        "ORDER BY sequence",
        (format_timestamp(now),),
    ).fetchall()
    changes: list[PowerPoint] = []
    for row in rows:
        at = parse_iso(row["time"])
        limit_kw = json.loads(row["data"]).get("limit_kw")
        if at is not None and isinstance(limit_kw, int | float):
            changes.append(PowerPoint(at, float(limit_kw) * 1000))
    earlier = [c for c in changes if c.at <= start]
    if earlier:
        before_w = earlier[-1].power_w
    later = [c for c in changes if c.at > start]
    return limit_series(before_w, later, bucket_ends(start, now, bucket))


def site_power(
    conn: sqlite3.Connection, now: datetime, hours: float, bucket: timedelta = BUCKET
) -> list[PowerPoint]:
    start = now - timedelta(hours=hours)
    samples, stops = load_samples(conn, start - HOLD, now, bucket)
    return power_series(samples, stops, bucket_ends(start, now, bucket))


# --- drawing -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    position: float  # percent of the plot: from the left (time), from the top (kW)
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """The plot's paths in a ``width`` x ``height`` box that the page stretches to its
    container, and the axis ticks as percentages of it: the labels are drawn outside the
    stretched box, in CSS pixels, so that they stay readable on a phone."""

    width: int
    height: int
    line: str  # SVG path of the series
    area: str  # the same, closed to the axis
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    peak_kw: float
    latest_kw: float
    description: str  # for screen readers
    limit_line: str = ""  # SVG path of the site limit in force, if given
    limit_kw: float | None = None  # the latest


def _nice_top(value: float) -> float:
    for top in (1, 2, 5, 10, 20, 25, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000):
        if value <= top:
            return float(top)
    return float(int(value / 1000 + 1) * 1000)


def with_now(points: Sequence[PowerPoint], now_w: float) -> list[PowerPoint]:
    """``points`` with the last (the bucket that ends now) replaced by ``now_w``, the power
    of the running sessions: the chart's "now" is the figure the rest of the page shows."""
    if not points:
        return []
    return [*points[:-1], PowerPoint(points[-1].at, now_w)]


def chart(
    points: Sequence[PowerPoint],
    width: int = 1000,
    height: int = 200,
    limit: Sequence[PowerPoint] = (),
    zone: tzinfo = UTC,
) -> Chart:
    """A line and area chart in kW with hour ticks (full hours in ``zone``, the site's),
    in a ``width`` x ``height`` box; with ``limit`` (at the same times) a step line of the
    site limit over it."""
    kws = [p.power_w / 1000 for p in points]
    limit_kws = [p.power_w / 1000 for p in limit]
    peak = max(kws, default=0.0)
    y_top = _nice_top(max(peak, *limit_kws) if limit_kws else peak)
    if not points:
        return Chart(width, height, "", "", [], [], 0.0, 0.0, "no power data")
    t0, t1 = points[0].at, points[-1].at
    span = max((t1 - t0).total_seconds(), 1.0)

    def share(at: datetime) -> float:
        return (at - t0).total_seconds() / span

    def x(at: datetime) -> float:
        return width * share(at)

    def y(kw: float) -> float:
        return height * (1 - kw / y_top)

    coords = [(x(p.at), y(kw)) for p, kw in zip(points, kws, strict=True)]
    line = "M" + " L".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
    area = f"{line} L{coords[-1][0]:.1f},{height:.1f} L{coords[0][0]:.1f},{height:.1f} Z"
    y_ticks = [Tick(100 * (1 - f), f"{y_top * f:g}") for f in (0, 0.5, 1)]
    x_ticks: list[Tick] = []
    # full hours of the site's clock (a zone may be off UTC by half an hour), stepped in
    # UTC so that a change to or from summer time neither repeats nor skips a tick
    local_hour = t0.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    hour = local_hour.astimezone(UTC) + timedelta(hours=1)
    step = timedelta(hours=1 if span <= 8 * 3600 else 3)
    while hour <= t1:
        x_ticks.append(Tick(100 * share(hour), hour.astimezone(zone).strftime("%H:%M")))
        hour += step
    description = f"Site power over {span / 3600:.0f} h: now {kws[-1]:.1f} kW, peak {peak:.1f} kW"
    limit_line = ""
    if limit_kws:
        steps = [f"M{x(limit[0].at):.1f},{y(limit_kws[0]):.1f}"]
        for p, kw in zip(limit[1:], limit_kws[1:], strict=True):
            steps.append(f"H{x(p.at):.1f} V{y(kw):.1f}")
        limit_line = " ".join(steps)
        description += f", site limit now {limit_kws[-1]:.1f} kW"
    return Chart(width, height, line, area, y_ticks, x_ticks, peak, kws[-1], description,
                 limit_line, limit_kws[-1] if limit_kws else None)  # fmt: skip
