"""A whole site against a real central: central all-in-one served by uvicorn on a free
port (in this event loop, restartable on the same port and data), an edge daemon with
``[central]`` url and a site key, a Mosquitto, simulated chargers (OCPP 1.6 and 2.0.1)
and sensors.

* ``central``: :class:`CentralServer` (``stop()`` / ``start()`` for an outage).
* ``site``: :class:`SiteRig`: the edge (``stop()`` / ``start()``), chargers ``cp16`` and
  ``cp201`` on EV slots E1 and E2, sensors on E1, E2, S1; central's lot matches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from central.analytics.settings import AnalyticsSettings
from central.app import create_app
from central.gateway.keys import KeyStore
from central.infra.db import create_engine
from central.settings import CentralSettings
from central.sync.tables import events as central_events
from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from sim.charger import OcppVersion, SimCharger, SimChargerConfig
from sim.sensors import QUIET, SensorField
from tests.harness.ports import free_port
from tests.mosquitto import Mosquitto, running_mosquitto

SITE = "sync-site"
TAGS = ("TAG-OK", "TAG-2")


class SyncTestSettings(CentralSettings):
    """Central with short presence windows."""

    site_offline_after_s: float = 2.0
    analytics: AnalyticsSettings = AnalyticsSettings(site_stale_s=2.0)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class CentralServer:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = SyncTestSettings(
            data_dir=data_dir,
            republish_interval_s=1.0,
            rate_limit={
                "burst": 10_000,
                "driver_per_minute": 60_000,
                "operator_per_minute": 60_000,
                "site_per_minute": 600_000,
            },
        )
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.app: Any = None

    async def start(self) -> None:
        self.app = create_app(self.settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_config=None, access_log=False,
            timeout_graceful_shutdown=1,
        )  # fmt: skip
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(), name="central")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise AssertionError("central stopped while starting")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        self._server.force_exit = True
        await self._task
        self._server = self._task = None

    async def make_key(
        self,
        scope: str,
        site: str | None = None,
        vehicles: tuple[str, ...] = (),
        user: str = "driver",
    ) -> str:
        """A driver key belongs to a user (``user``) and sees only ``vehicles``."""
        user_id = user if scope == "driver" else None
        engine = create_engine(self.settings.database_url_for("gateway"))
        try:
            return await KeyStore(engine, lambda: datetime.now(UTC)).create(
                scope, site, user_id=user_id, vehicle_ids=vehicles
            )
        finally:
            await engine.dispose()

    async def auth(
        self,
        scope: str,
        site: str | None = None,
        vehicles: tuple[str, ...] = (),
        user: str = "driver",
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.make_key(scope, site, vehicles, user)}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=20)

    async def stored_events(self, site_id: str = SITE) -> list[tuple[int, str, str]]:
        """(sequence, id, type) of every event central holds for the site, by sequence."""
        engine = create_engine(self.settings.database_url_for("sync"))
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    select(central_events.c.sequence, central_events.c.id, central_events.c.type)
                    .where(central_events.c.site_id == site_id)
                    .order_by(central_events.c.sequence)
                )
                return [(r.sequence, r.id, r.type) for r in rows]
        finally:
            await engine.dispose()


class SkewClock:
    """The edge's clock: real time plus an offset a test may move (a skewed site clock)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class SiteRig:
    central: CentralServer
    broker: Mosquitto
    data_dir: Path
    site_key: str
    clock: SkewClock = field(default_factory=SkewClock)
    power: dict[str, Any] | None = None  # the edge's [power] table; None: no load management
    ocpp_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    edge: EdgeDaemon | None = None
    cp16: SimCharger | None = None
    cp201: SimCharger | None = None
    sensors: SensorField | None = None

    def config(self) -> SiteConfig:
        return SiteConfig(
            site={"id": SITE, "environment": "development"},
            ocpp={"host": "127.0.0.1", "port": self.ocpp_port, "auto_register": True,
                  "call_timeout": 5},
            http={"host": "127.0.0.1", "port": self.http_port},
            storage={"data_dir": self.data_dir},
            authorization={"id_tags": list(TAGS)},
            chargers=[{"id": "CP-16"}, {"id": "CP-201"}],
            mqtt={"url": self.broker.url, "embedded": False},
            slot_timing={"debounce": 0},
            central={"url": self.central.url, "site_key": self.site_key,
                     "batch_interval": 0.2, "batch_size": 200},
            slots=[
                {"id": "E1", "type": "ev", "sensor": "S-E1", "charger": "CP-16", "evse": 1},
                {"id": "E2", "type": "ev", "sensor": "S-E2", "charger": "CP-201", "evse": 1},
                {"id": "S1", "type": "standard", "sensor": "S-S1"},
            ],
            **({} if self.power is None else {"power": self.power}),
        )  # fmt: skip

    async def start(self) -> None:
        self.edge = EdgeDaemon(self.config(), clock=self.clock)
        await self.edge.__aenter__()

    async def stop(self) -> None:
        if self.edge is not None:
            await self.edge.__aexit__(None, None, None)
            self.edge = None

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.http_port}", timeout=20)

    async def health(self) -> dict[str, Any]:
        async with self.api() as api:
            found: dict[str, Any] = (await api.get("/healthz")).json()
            return found

    async def outbox(self) -> list[tuple[int, str, str]]:
        assert self.edge is not None
        return await self.edge.store.read(
            lambda c: [
                (int(r[0]), str(r[1]), str(r[2]))
                for r in c.execute("SELECT sequence, id, type FROM outbox ORDER BY sequence")
            ]
        )

    async def backlog(self) -> int:
        assert self.edge is not None
        assert self.edge.sync is not None
        state = await self.edge.store.read(_outbox_state)
        return int(state.backlog)


def _outbox_state(conn: Any) -> Any:
    from edge.storage.sync_sql import outbox_state

    return outbox_state(conn)


def charger_config(rig: SiteRig, charger_id: str, version: OcppVersion) -> SimChargerConfig:
    return SimChargerConfig(
        charger_id,
        url=f"ws://127.0.0.1:{rig.ocpp_port}/ocpp",
        version=version,
        auto_meter_values=True,
        id_tags=TAGS,
        speed=120.0,
        meter_interval=0.5,
        seed=7,
        call_timeout=5.0,
        backoff_initial=0.05,
        backoff_max=0.3,
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path / "mqtt") as mosquitto:
        yield mosquitto


@pytest.fixture
async def central(tmp_path: Path) -> AsyncIterator[CentralServer]:
    server = CentralServer(tmp_path / "central")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def site_power() -> dict[str, Any] | None:
    """The edge's ``[power]`` table: none (no load management) unless a test says so."""
    return None


@pytest.fixture
async def site(
    central: CentralServer, broker: Mosquitto, tmp_path: Path, site_power: dict[str, Any] | None
) -> AsyncIterator[SiteRig]:
    """The edge online with central, its chargers booted and its sensors publishing;
    central's lot for the site matches the edge's slots."""
    operator = await central.auth("operator")
    async with central.client() as client:
        lot = await client.put(
            f"/parking/lots/{SITE}",
            headers=operator,
            json={
                "name": "sync test site",
                "slots": [
                    {"slot_id": "E1", "slot_type": "ev", "charger_id": "CP-16"},
                    {"slot_id": "E2", "slot_type": "ev", "charger_id": "CP-201"},
                    {"slot_id": "S1", "slot_type": "standard"},
                ],
            },
        )
        assert lot.status_code == 200, lot.text
    rig = SiteRig(
        central, broker, tmp_path / "edge", await central.make_key("site", SITE), power=site_power
    )
    await rig.start()
    sensors = SensorField(
        SITE, {"E1": "S-E1", "E2": "S-E2", "S1": "S-S1"}, broker.url, seed=3,
        noise=QUIET,
    )  # fmt: skip
    async with (
        SimCharger(charger_config(rig, "CP-16", "1.6")) as cp16,
        SimCharger(charger_config(rig, "CP-201", "2.0.1")) as cp201,
        sensors,
    ):
        rig.cp16, rig.cp201, rig.sensors = cp16, cp201, sensors
        async with asyncio.timeout(15):
            await cp16.wait_online()
            await cp201.wait_online()
        try:
            yield rig
        finally:
            await rig.stop()
