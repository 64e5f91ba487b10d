"""Charging applies a run of progress updates together (one read, one write per
session): the sessions must come out exactly as if every event had come alone, whatever
the batch boundaries, with stale, repeated, foreign, idle and invalid updates among them."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from structlog.testing import capture_logs

from central.charging.tables import metadata
from central.infra.db import create_engine
from contract.envelope import CloudEvent
from tests.central.conftest import Central, FakeClock

Factory = Callable[..., Any]


def day_of(site: str, t0: datetime) -> list[CloudEvent]:
    items: list[tuple[str, dict[str, Any]]] = []
    for n in range(4):
        session = f"{site}-s{n}"
        started = t0 + timedelta(minutes=n)
        items.append(
            ("charging.started",
             {"session_id": session, "charger_id": f"CP{n}", "evse_id": 1,
              "started_at": started.isoformat()})
        )  # fmt: skip
        for minute in range(1, 9):
            at = started + timedelta(minutes=minute)
            power = 20.0 if minute > 6 else 7000.0  # the car full: idle from minute 7
            items.append(
                ("charging.progress",
                 {"session_id": session, "energy_wh": 120.4 * minute, "power_w": power,
                  "at": at.isoformat()})
            )  # fmt: skip
        stale = started + timedelta(minutes=2)
        items.append(
            ("charging.progress",
             {"session_id": session, "energy_wh": 1.0, "power_w": 1.0, "at": stale.isoformat()})
        )  # fmt: skip
        if n % 2:
            stopped = started + timedelta(minutes=10)
            items.append(
                ("charging.completed",
                 {"session_id": session, "charger_id": f"CP{n}", "evse_id": 1,
                  "energy_wh": 1000.6, "started_at": started.isoformat(),
                  "stopped_at": stopped.isoformat()})
            )  # fmt: skip
            items.append(  # after its end: ignored
                ("charging.progress",
                 {"session_id": session, "energy_wh": 5000, "at": stopped.isoformat()})
            )  # fmt: skip
    other = "south" if site == "north" else "north"
    items += [
        # another site's session id: never moves that session
        ("charging.progress", {"session_id": f"{other}-s0", "energy_wh": 9e6, "at": t0.isoformat()}),
        ("charging.progress", {"session_id": f"{site}-s0", "energy_wh": "lots", "at": "never"}),
        ("charging.progress", {"session_id": f"{site}-s0", "energy_wh": -5, "at": t0.isoformat()}),
    ]  # fmt: skip
    return [
        CloudEvent(
            id=f"{site}-{i}",
            source=f"/sites/{site}",
            type=type_,
            time=t0,
            sequence=i + 1,
            data=data,
        )
        for i, (type_, data) in enumerate(items)
    ]


async def tables_after(central: Central, batches: Sequence[Sequence[CloudEvent]]) -> dict[str, Any]:
    events = central.service("charging").events
    for batch in batches:
        if len(batch) == 1:
            await events.handle(batch[0])
        else:
            await events.handle_batch(batch)
    engine = create_engine(central.settings.database_url_for("charging"))
    found = {}
    try:
        async with engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows = (await conn.execute(select(table))).mappings()
                found[table.name] = sorted((dict(row) for row in rows), key=repr)
    finally:
        await engine.dispose()
    return found


async def test_progress_runs_make_the_same_sessions_as_one_event_at_a_time(
    central_factory: Factory, clock: FakeClock
) -> None:
    t0 = clock() - timedelta(hours=1)
    events = [
        e for pair in zip(day_of("north", t0), day_of("south", t0), strict=True) for e in pair
    ]
    cuts = sorted(random.Random(5).sample(range(1, len(events)), 6))
    batches = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    batches.append(events[10:40])  # redelivered

    with capture_logs() as logs:
        async with central_factory(services=["charging"]) as one:
            single = await tables_after(one, [[e] for e in events])
        async with central_factory(services=["charging"]) as other:
            batched = await tables_after(other, batches)

    sessions = {row["id"]: row for row in single["charging_sessions"]}
    assert len(sessions) == 8
    assert (sessions["north-s0"]["status"], sessions["north-s0"]["energy_wh"]) == ("active", 963)
    assert sessions["north-s0"]["charging_ended_at"] is not None  # idle since minute 7
    assert (sessions["north-s1"]["status"], sessions["north-s1"]["energy_wh"]) == (
        "completed",
        1001,
    )
    assert batched == single
    invalid = [e for e in logs if e["event"] == "charging.event.invalid"]
    assert len(invalid) == 2 * 2 * 2  # two bad updates per site, in both runs
