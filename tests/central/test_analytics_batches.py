"""Analytics applies a batch of events in one transaction with its figures summed first:
the tables must come out exactly as if the events had come one by one, whatever the
batch boundaries, with redeliveries and an id sent twice in one batch counted once."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from central.analytics.events import ingest
from central.analytics.tables import metadata
from central.infra.db import create_engine
from contract.envelope import CloudEvent
from tests.central.notification_fixtures import pg_database

T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=6)
RATE = {"rate_id": "std", "currency": "EUR", "price_per_kwh": "0.30", "session_fee": "1.00"}


def iso(at: datetime) -> str:
    return at.isoformat()


def site_day(site: str, first_sequence: int) -> list[CloudEvent]:
    """A site's afternoon: a rate, visits, sessions with progress, sensors, a failure."""
    items: list[tuple[str, datetime, dict[str, Any]]] = [
        ("charging.rates_updated", T0, {"rates": [RATE]}),
    ]
    for n in range(6):
        arrived, left = T0 + timedelta(minutes=20 * n), T0 + timedelta(minutes=20 * n + 95)
        slot = f"S{n % 3}"
        visit = {"slot_id": slot, "slot_type": "ev", "visit_id": f"{site}-v{n}"}
        items += [
            ("parking.occupied", arrived, {**visit, "arrived_at": iso(arrived)}),
            ("sensor.status", arrived, {"sensor_id": f"s{n}", "slot_id": slot, "online": True}),
            ("charging.started", arrived, {"session_id": f"{site}-c{n}", "started_at": iso(arrived),
                                           "charger_id": "CP1", "evse_id": 1, "vehicle_id": f"EV-{n}"}),
            ("charging.progress", arrived + timedelta(minutes=30),
             {"session_id": f"{site}-c{n}", "energy_wh": 3300.4, "power_w": 7200,
              "at": iso(arrived + timedelta(minutes=30))}),
            ("charging.completed", left, {"session_id": f"{site}-c{n}", "energy_wh": 9876.5,
                                          "started_at": iso(arrived), "stopped_at": iso(left),
                                          "charger_id": "CP1", "evse_id": 1}),
            ("parking.vacated", left, {**visit, "arrived_at": iso(arrived), "departed_at": iso(left)}),
        ]  # fmt: skip
    items.append(("charging.failed", T0, {"charger_id": "CP1", "evse_id": 1, "reason": "x"}))
    return [
        CloudEvent(
            id=f"{site}-{i}",
            source=f"/sites/{site}",
            type=type_,
            time=at,
            sequence=first_sequence + i,
            data=data,
        )
        for i, (type_, at, data) in enumerate(items)
    ]


async def tables_after(url: str, batches: Sequence[Sequence[CloudEvent]]) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        for batch in batches:
            async with engine.begin() as conn:
                await ingest(conn, batch, NOW)
        return await contents(engine)
    finally:
        await engine.dispose()


async def contents(engine: AsyncEngine) -> dict[str, Any]:
    found = {}
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(select(table))).mappings()
            kept = [{k: v for k, v in row.items() if k != "pk"} for row in rows]
            found[table.name] = sorted(kept, key=repr)
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
async def two_databases(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[list[str]]:
    if request.param == "sqlite":
        yield [f"sqlite+aiosqlite:///{tmp_path / f'{n}.db'}" for n in ("one", "batches")]
        return
    async with pg_database() as one, pg_database() as batches:
        yield [one, batches]


async def test_batches_make_the_same_figures_as_one_event_at_a_time(
    two_databases: list[str],
) -> None:
    events = site_day("north", 1) + site_day("south", 1)
    random.Random(7).shuffle(events)  # sites interleaved; each site's order kept below
    events.sort(key=lambda e: (e.sequence, e.site_id))
    one_by_one = [[e] for e in events]
    cuts = sorted(random.Random(3).sample(range(1, len(events)), 9))
    batches = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    # a redelivered batch, and an event twice within one batch
    batches += [batches[2], [events[5], events[5], events[6]]]

    single = await tables_after(two_databases[0], one_by_one)
    batched = await tables_after(two_databases[1], batches)

    assert len(single["event_logs"]) == len(events)
    for figures in ("revenue_metrics", "analytics_visits", "analytics_slots"):
        assert single[figures], figures
    health = {row["component"]: row["events"] for row in batched["system_health"]}
    assert health["site:north"] == health["site:south"] == len(events) // 2
    assert batched == single
