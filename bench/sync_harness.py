"""A site day under chaos, shared by ``tests/sync/test_chaos.py`` and ``bench/sync_chaos.py``.

Central (``evpark central run``) and the edge (``evpark edge run``) run as their own
processes; simulated chargers (OCPP 1.6 and 2.0.1) and sensors drive cars in and out at
high speed through an MQTT broker the caller provides. The edge is killed with SIGKILL
at random moments and restarted; central is killed once for ``outage_s`` seconds. At the
end the traffic stops, open sessions are stopped, and the harness waits until central
holds the edge's last sequence; then it compares the two sides from their databases:

* every event in the edge's outbox is in central once, same id, sequences 1..N gap-free;
* finished sessions (id, energy) and finished visits agree.

Everything random comes from ``seed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sim.charger import OcppVersion, SimCharger, SimChargerConfig
from sim.sensors import QUIET, SensorField
from sim.vehicles import EvBay, Habits, VehicleScenario
from tests.harness.ports import free_port
from tests.harness.processes import (
    DaemonProcess,
    central_run_command,
    create_site_key,
    edge_run_command,
)
from tests.harness.site_config import write_site_toml

SITE = "chaos-site"
TAGS = ("TAG-1", "TAG-2", "TAG-3")
CHARGERS: tuple[tuple[str, OcppVersion], ...] = (
    ("CP-A1", "1.6"),
    ("CP-A2", "2.0.1"),
    ("CP-A3", "1.6"),
    ("CP-A4", "2.0.1"),
)
STANDARD_SLOTS = ("B1", "B2", "B3")


@dataclass(frozen=True)
class ChaosPlan:
    seed: int
    duration_s: float = 20.0  # wall seconds of traffic
    kills: int = 3
    outage_s: float = 4.0  # central down once, for this long
    speed: float = 2400.0  # simulated seconds per wall second
    drain_timeout_s: float = 60.0


@dataclass
class ChaosReport:
    seed: int
    events: int = 0
    kills: int = 0
    outage_s: float = 0.0
    lost: int = 0
    duplicated: int = 0
    gaps: int = 0
    mismatched_ids: int = 0
    sessions: int = 0
    sessions_disagreeing: list[str] = field(default_factory=list)
    visits: int = 0
    visits_disagreeing: list[str] = field(default_factory=list)
    drain_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.gaps
            or self.mismatched_ids
            or self.sessions_disagreeing
            or self.visits_disagreeing
        )


def site_sections(ocpp_port: int, http_port: int, mqtt_url: str) -> dict[str, Any]:
    """The chaos site: an EV slot per charger, a few standard slots, quick batches."""
    ev_slots = [
        {"id": f"A{i}", "type": "ev", "sensor": f"S-A{i}", "charger": cid, "evse": 1}
        for i, (cid, _) in enumerate(CHARGERS, start=1)
    ]
    return {
        "site": {"id": SITE, "environment": "development"},
        "ocpp": {"host": "127.0.0.1", "port": ocpp_port, "auto_register": True, "call_timeout": 5},
        "http": {"host": "127.0.0.1", "port": http_port},
        "mqtt": {"url": mqtt_url},
        "slot_timing": {"debounce": 0},
        "central": {"batch_interval": 0.2, "batch_size": 500},
        "authorization": {"id_tags": list(TAGS)},
        "chargers": [{"id": cid} for cid, _ in CHARGERS],
        "slots": [*ev_slots, *({"id": s, "sensor": f"S-{s}"} for s in STANDARD_SLOTS)],
    }


async def _start(daemon: DaemonProcess, health_url: str) -> None:
    """Start ``daemon`` and wait until it is healthy, the event loop free meanwhile."""
    await asyncio.to_thread(daemon.start)
    await asyncio.to_thread(daemon.wait_healthy, health_url, within=30)


async def _stop(daemon: DaemonProcess) -> None:
    """SIGTERM (SIGKILL after 20 s), the event loop free meanwhile."""
    await asyncio.to_thread(daemon.stop, 20.0)


async def _kill(daemon: DaemonProcess) -> None:
    await asyncio.to_thread(daemon.kill)


class ChaosSite:
    def __init__(self, workdir: Path, mqtt_url: str) -> None:
        self.workdir = workdir
        self.mqtt_url = mqtt_url
        self.central_port, self.ocpp_port, self.http_port = free_port(), free_port(), free_port()
        self.central_dir = workdir / "central"
        self.edge_dir = workdir / "edge"
        self.central_url = f"http://127.0.0.1:{self.central_port}"
        self.site_key = ""
        workdir.mkdir(parents=True, exist_ok=True)
        config = write_site_toml(
            workdir / "site.toml", site_sections(self.ocpp_port, self.http_port, mqtt_url)
        )
        self.central = DaemonProcess(
            "central",
            central_run_command(self.central_port, "--data-dir", str(self.central_dir)),
            workdir / "central.log",
            env={"EVPARK_CENTRAL_REPUBLISH_INTERVAL_S": "1"},
        )
        self.edge = DaemonProcess(
            "edge",
            edge_run_command(config, self.edge_dir, "--central-url", self.central_url),
            workdir / "edge.log",
        )

    async def start_central(self) -> None:
        await _start(self.central, f"{self.central_url}/healthz")

    async def start_edge(self) -> None:
        self.edge.env = {"EVPARK_CENTRAL__SITE_KEY": self.site_key}
        await _start(self.edge, f"http://127.0.0.1:{self.http_port}/healthz")

    async def create_site_key(self) -> None:
        self.site_key = await asyncio.to_thread(create_site_key, SITE, data_dir=self.central_dir)

    async def central_sequence(self) -> int | None:
        try:
            async with httpx.AsyncClient(base_url=self.central_url, timeout=5) as client:
                reply = await client.get(
                    "/sync/v1/status", headers={"Authorization": f"Bearer {self.site_key}"}
                )
        except httpx.TransportError:
            return None
        return int(reply.json()["last_sequence"]) if reply.status_code == 200 else None

    def edge_last_sequence(self) -> int:
        with contextlib.closing(self._edge_db()) as conn:
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
            return int(row[0]) if row else 0

    def _edge_db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.edge_dir / 'edge.sqlite3'}?mode=ro", uri=True)

    def _central_db(self, service: str) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.central_dir / f'{service}.db'}?mode=ro", uri=True)

    @contextlib.asynccontextmanager
    async def chargers(self, speed: float, seed: int) -> AsyncIterator[list[SimCharger]]:
        async with contextlib.AsyncExitStack() as stack:
            found = []
            for index, (cid, version) in enumerate(CHARGERS):
                config = SimChargerConfig(
                    cid, url=f"ws://127.0.0.1:{self.ocpp_port}/ocpp", version=version,
                    auto_meter_values=True, id_tags=TAGS, speed=speed, meter_interval=1.0,
                    seed=seed + index, call_timeout=5.0, backoff_initial=0.1, backoff_max=0.5,
                    offline_queue_size=100_000,
                )  # fmt: skip
                found.append(await stack.enter_async_context(SimCharger(config)))
            yield found

    def compare(self, report: ChaosReport) -> None:
        """Both sides from their databases (the edge and central stopped)."""
        with contextlib.closing(self._edge_db()) as edge:
            outbox = edge.execute("SELECT sequence, id FROM outbox ORDER BY sequence").fetchall()
            last = edge.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
            edge_sessions = {
                r[0]: r[1]
                for r in edge.execute("SELECT id, energy_wh FROM sessions WHERE status != 'active'")
            }
            edge_visits = {
                r[0] for r in edge.execute("SELECT visit_id FROM visits WHERE departed_at IS NOT NULL")
            }  # fmt: skip
        with contextlib.closing(self._central_db("sync")) as sync:
            held = sync.execute(
                "SELECT sequence, id FROM sync_events WHERE site_id = ? ORDER BY sequence", (SITE,)
            ).fetchall()
            ids = [
                r[0] for r in sync.execute("SELECT id FROM sync_events WHERE site_id = ?", (SITE,))
            ]
        with contextlib.closing(self._central_db("charging")) as charging:
            central_sessions = {
                r[0]: (r[1], r[2])
                for r in charging.execute("SELECT id, energy_wh, status FROM charging_sessions")
            }
        with contextlib.closing(self._central_db("parking")) as parking:
            central_visits = [
                json.loads(r[0]).get("visit_id")
                for r in parking.execute("SELECT data FROM parking_history WHERE kind = 'vacated'")
            ]
        written = int(last[0]) if last else 0
        report.events = written
        sequences = [s for s, _ in held]
        report.gaps = sum(1 for i, s in enumerate(sequences, start=1) if s != i)
        report.lost = max(0, written - len(held))
        report.duplicated = (len(ids) - len(set(ids))) + (len(sequences) - len(set(sequences)))
        central_by_sequence = dict(held)
        report.mismatched_ids = sum(1 for s, i in outbox if central_by_sequence.get(s) != i)
        report.sessions = len(edge_sessions)
        for sid, energy in edge_sessions.items():
            theirs = central_sessions.get(sid)
            if theirs is None or abs(theirs[0] - round(energy)) > 1 or theirs[1] == "active":
                report.sessions_disagreeing.append(f"{sid}: edge {energy} central {theirs}")
        report.visits = len(edge_visits)
        if sorted(central_visits) != sorted(edge_visits):
            missing = edge_visits - set(central_visits)
            extra = [
                v for v in central_visits if v not in edge_visits or central_visits.count(v) > 1
            ]
            report.visits_disagreeing = [f"missing {sorted(missing)[:5]}", f"extra {extra[:5]}"]


async def run_chaos(plan: ChaosPlan, workdir: Path, mqtt_url: str) -> ChaosReport:
    rng = random.Random(plan.seed)
    report = ChaosReport(seed=plan.seed)
    site = ChaosSite(workdir, mqtt_url)
    await site.start_central()
    try:
        await site.create_site_key()
        await site.start_edge()
        scale = plan.speed / 60.0  # habits in simulated seconds; keep visits a few wall s
        habits = Habits(
            gap=(60.0 * scale / 40, 600.0 * scale / 40),
            settle=(5.0, 30.0),
            charge=(600.0 * scale / 40, 2400.0 * scale / 40),
            linger=(0.0, 300.0),
            leave=(10.0, 60.0),
        )
        sensors = SensorField(
            SITE,
            {**{f"A{i}": f"S-A{i}" for i in range(1, len(CHARGERS) + 1)},
             **{s: f"S-{s}" for s in STANDARD_SLOTS}},
            mqtt_url, seed=plan.seed, noise=QUIET, speed=plan.speed,
        )  # fmt: skip
        async with site.chargers(plan.speed, plan.seed) as chargers, sensors:
            bays = [EvBay(f"A{i}", cp, 1) for i, cp in enumerate(chargers, start=1)]
            scenario = VehicleScenario(
                sensors, bays, speed=plan.speed, seed=plan.seed, habits=habits
            )
            async with asyncio.TaskGroup() as group:
                traffic = group.create_task(scenario.run(), name="traffic")
                await _chaos(plan, rng, site, report)
                traffic.cancel()
            for charger in chargers:  # the day ends: open sessions stop
                for evse in charger.connectors:
                    if charger.transaction(evse) is not None:
                        await charger.stop(evse, "Local")
                async with asyncio.timeout(plan.drain_timeout_s):
                    await charger.wait_online()
                    await charger.flush()
        # chargers and sensors gone (their last events written): the edge catches up
        await asyncio.sleep(1.0)
        started = time.monotonic()
        await _drained(site, plan.drain_timeout_s)
        report.drain_s = time.monotonic() - started
        await _stop(site.edge)
        if site.edge_last_sequence() != await site.central_sequence():
            # its shutdown wrote more: once more until central has those too
            await site.start_edge()
            await _drained(site, plan.drain_timeout_s)
            await _stop(site.edge)
        # central's services catch up on what the sync service stored (its bus)
        deadline = time.monotonic() + plan.drain_timeout_s
        while True:
            report = _fresh(report)
            site.compare(report)
            if report.ok or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await _stop(site.edge)
        await _stop(site.central)
        return report
    finally:
        await _kill(site.edge)
        await _kill(site.central)


def _fresh(report: ChaosReport) -> ChaosReport:
    """The run's figures without the previous comparison's findings."""
    return ChaosReport(
        seed=report.seed, kills=report.kills, outage_s=report.outage_s, drain_s=report.drain_s
    )


async def _chaos(plan: ChaosPlan, rng: random.Random, site: ChaosSite, report: ChaosReport) -> None:
    """Kills of the edge spread over the day, central down once in between."""
    slots = plan.kills + 1
    outage_after = rng.randrange(1, slots) if plan.outage_s > 0 else -1
    for index in range(slots):
        await asyncio.sleep(rng.uniform(0.5, 1.5) * plan.duration_s / slots)
        if index == outage_after:
            await _kill(site.central)
            await asyncio.sleep(plan.outage_s)
            report.outage_s += plan.outage_s
            await site.start_central()
        if index < plan.kills:
            await _kill(site.edge)
            report.kills += 1
            await asyncio.sleep(rng.uniform(0.1, 1.0))
            await site.start_edge()


async def _drained(site: ChaosSite, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        held = await site.central_sequence()
        if held is not None and held == site.edge_last_sequence():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"central holds {await site.central_sequence()}, the edge wrote "
        f"{site.edge_last_sequence()}: not drained within {within} s"
    )


def describe(report: ChaosReport) -> dict[str, Any]:
    return {
        "seed": report.seed,
        "events": report.events,
        "kills": report.kills,
        "outage_s": report.outage_s,
        "lost": report.lost,
        "duplicated": report.duplicated,
        "gaps": report.gaps,
        "mismatched_ids": report.mismatched_ids,
        "sessions": report.sessions,
        "sessions_disagreeing": report.sessions_disagreeing[:5],
        "visits": report.visits,
        "visits_disagreeing": report.visits_disagreeing,
        "drain_s": round(report.drain_s, 2),
    }
