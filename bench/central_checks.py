"""What a central scale run left in PostgreSQL: the exactly-once check (every posted event
stored once and applied once by every consumer) and the rows and bytes it cost.

Read straight from the services' databases of a :class:`~tests.harness.central_cluster.CentralCluster`
with asyncpg; nothing here changes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from bench.central_sites import Expected, SiteEvents
from tests.harness.central_cluster import CentralCluster
from tests.harness.shared_services import PG_HOST, PG_PORT, PG_USER


@dataclass(frozen=True)
class Check:
    what: str
    expected: int
    got: int

    @property
    def ok(self) -> bool:
        return self.expected == self.got


async def _connect(database: str) -> asyncpg.Connection:
    return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)


async def _values(database: str, query: str) -> list[int]:
    conn = await _connect(database)
    try:
        row = await conn.fetchrow(query)
    finally:
        await conn.close()
    assert row is not None
    return [int(v or 0) for v in row.values()]


async def exactly_once(
    cluster: CentralCluster, sites: Iterable[SiteEvents], log_problems: Mapping[str, int]
) -> list[Check]:
    """Every event the sites made (all acknowledged) against what each service holds."""
    sites = list(sites)
    want = Expected.of(sites)
    db = cluster.database_names
    stored, distinct = await _values(
        db["sync"], "SELECT count(*), count(DISTINCT id) FROM sync_events"
    )
    conn = await _connect(db["sync"])
    try:
        per_site = {
            r["site_id"]: (r["n"], r["low"], r["high"])
            for r in await conn.fetch(
                "SELECT site_id, count(*) AS n, min(sequence) AS low, max(sequence) AS high "
                "FROM sync_events GROUP BY site_id"
            )
        }
    finally:
        await conn.close()
    gap_free = sum(per_site.get(s.site_id) == (s.made, 1, s.made) for s in sites if s.made)
    logged, arrivals, departures, started, completed = await _values(
        db["analytics"],
        "SELECT (SELECT count(*) FROM event_logs), sum(arrivals), sum(departures), "
        "sum(sessions_started), sum(sessions_completed) FROM usage_metrics",
    )
    parking, *parking_kinds = await _values(
        db["parking"],
        "SELECT count(*), count(*) FILTER (WHERE kind = 'occupied'), "
        "count(*) FILTER (WHERE kind = 'vacated'), count(*) FILTER (WHERE kind = 'sensor') "
        "FROM parking_history",
    )
    history_started, history_completed = await _values(
        db["charging"],
        "SELECT count(*) FILTER (WHERE kind = 'started'), "
        "count(*) FILTER (WHERE kind = 'completed') FROM charging_history",
    )
    sessions, sessions_completed = await _values(
        db["charging"],
        "SELECT count(*), count(*) FILTER (WHERE status = 'completed') FROM charging_sessions",
    )
    occupied, vacated = want.count("parking.occupied"), want.count("parking.vacated")
    n_started, n_completed = want.count("charging.started"), want.count("charging.completed")
    return [
        Check("sync: events stored", want.events, stored),
        Check("sync: distinct event ids", want.events, distinct),
        Check("sync: sites stored 1..N gap-free", sum(1 for s in sites if s.made), gap_free),
        Check("analytics: events logged", want.events, logged),
        Check("analytics: arrivals counted", occupied, arrivals),
        Check("analytics: departures counted", vacated, departures),
        Check("analytics: sessions started counted", n_started, started),
        Check("analytics: sessions completed counted", n_completed, completed),
        Check("parking: history rows", occupied + vacated + want.count("sensor.status"), parking),
        Check("parking: arrivals", occupied, parking_kinds[0]),
        Check("parking: departures", vacated, parking_kinds[1]),
        Check("parking: sensor reports", want.count("sensor.status"), parking_kinds[2]),
        Check("charging: sessions started (history)", n_started, history_started),
        Check("charging: sessions completed (history)", n_completed, history_completed),
        Check("charging: sessions", want.sessions, sessions),
        Check("charging: sessions completed", n_completed, sessions_completed),
        *(Check(f"logs: {needle}", 0, count) for needle, count in log_problems.items()),
    ]


def checks_json(checks: Iterable[Check]) -> dict[str, Any]:
    items = [{**asdict(c), "ok": c.ok} for c in checks]
    return {"ok": all(i["ok"] for i in items), "checks": items}


@dataclass(frozen=True)
class Storage:
    """One database's rows and size at a moment."""

    rows: int  # counted in every table
    updated: int  # rows updated so far (pg_stat_user_tables: a backend's counts lag ~1 s)
    size: int  # bytes


async def storage(cluster: CentralCluster) -> dict[str, Storage]:
    """Every database's rows (counted), rows updated and size now."""
    out = {}
    for owner, database in cluster.database_names.items():
        conn = await _connect(database)
        try:
            tables = [
                r["relname"] for r in await conn.fetch("SELECT relname FROM pg_stat_user_tables")
            ]
            counts = " + ".join(f'(SELECT count(*) FROM "{t}")' for t in tables) or "0"
            rows = await conn.fetchval(f"SELECT {counts}")
            updated, size = await conn.fetchrow(
                "SELECT coalesce(sum(n_tup_upd), 0), pg_database_size(current_database()) "
                "FROM pg_stat_user_tables"
            )
        finally:
            await conn.close()
        out[owner] = Storage(int(rows), int(updated), int(size))
    return out


def storage_per_event(
    before: Mapping[str, Storage], after: Mapping[str, Storage], events: int
) -> dict[str, Any]:
    """Rows added, rows updated and bytes grown per event, by database and in all."""
    per = max(events, 1)
    by_db = {
        owner: {
            "rows_added": round((after[owner].rows - before[owner].rows) / per, 2),
            "rows_updated": round((after[owner].updated - before[owner].updated) / per, 2),
            "bytes": round((after[owner].size - before[owner].size) / per),
        }
        for owner in after
    }
    return {
        "rows_added_per_event": round(sum(d["rows_added"] for d in by_db.values()), 2),
        "rows_updated_per_event": round(sum(d["rows_updated"] for d in by_db.values()), 2),
        "bytes_per_event": sum(d["bytes"] for d in by_db.values()),
        "by_database": by_db,
    }
