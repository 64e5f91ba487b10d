"""State survives restarts; sessions of vanished chargers are closed by inference."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from edge.config import SiteConfig
from edge.core.model import SessionStatus
from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from tests.edge.conftest import ocpp_url
from tests.ocpp_client import RawCharger
from tests.ocpp_flows import flow_for

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_restart_keeps_chargers_sessions_and_id_tags(
    config_factory: Callable[..., SiteConfig], version: Version
) -> None:
    config = config_factory()
    async with (
        EdgeDaemon(config) as daemon,
        RawCharger(ocpp_url(daemon), "CP-KEEP", version) as charger,
    ):
        flow = flow_for(charger)
        await flow.boot()
        await flow.plug(1)
        tx = await flow.start(1, "TAG-OK", 1000, T0)
        await flow.meter(1, tx, 1500, "Wh", T0 + timedelta(minutes=5))
    async with EdgeDaemon(config) as daemon:
        assert "CP-KEEP" in daemon.site.chargers
        assert daemon.site.chargers["CP-KEEP"].info.model in ("T16", "T201")
        expected = "occupied" if version is Version.V16 else "charging"  # 2.0.1 says so in the tx
        assert daemon.site.chargers["CP-KEEP"].evses[1].status.value == expected
        assert daemon.site.authorize("TAG-OK") == "Accepted"
        active = daemon.site.active_sessions()
        assert [(s.transaction_id, s.energy_wh) for s in active] == [(tx, 500.0)]
        async with RawCharger(ocpp_url(daemon), "CP-KEEP", version) as charger:
            flow = flow_for(charger)
            await flow.stop(1, tx, 2500, T0 + timedelta(minutes=30))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.http_port}") as api:
            sessions = (await api.get("/api/sessions", params={"charger": "CP-KEEP"})).json()
    assert [(s["status"], s["energy_wh"]) for s in sessions] == [("completed", 1500.0)]


async def test_next_1_6_transaction_id_continues_after_restart(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory()
    ids = []
    for _ in range(2):
        async with (
            EdgeDaemon(config) as daemon,
            RawCharger(ocpp_url(daemon), "CP-NUM", Version.V16) as charger,
        ):
            flow = flow_for(charger)
            tx = await flow.start(1, "TAG-OK", 0, datetime.now(UTC))
            await flow.stop(1, tx, 10, datetime.now(UTC))
            ids.append(int(tx))
    assert ids[1] == ids[0] + 1


async def test_sessions_of_vanished_chargers_are_inferred_stopped(
    config_factory: Callable[..., SiteConfig], version: Version
) -> None:
    clock = FakeClock(T0)
    config = config_factory(ocpp={"inferred_stop_after": 3600})
    async with EdgeDaemon(config, clock=clock) as daemon:
        async with RawCharger(ocpp_url(daemon), "CP-GONE", version) as charger:
            flow = flow_for(charger)
            tx = await flow.start(1, "TAG-OK", 0, T0)
            await flow.meter(1, tx, 2200, "Wh", T0 + timedelta(minutes=20))
        clock.now = T0 + timedelta(minutes=50)
        assert await daemon.site.infer_stops() == 0  # not gone long enough
        clock.now = T0 + timedelta(hours=2)
        assert await daemon.site.infer_stops() == 1
        assert daemon.site.active_sessions() == []
    async with EdgeDaemon(config, clock=clock) as daemon:
        from edge.storage import site_sql as repo

        rows = await daemon.store.read(lambda c: repo.list_sessions(c, charger_id="CP-GONE"))
        assert [(s.status, s.energy_wh, s.stop_reason) for s in rows] == [
            (SessionStatus.INFERRED_STOPPED, 2200.0, "ChargerVanished")
        ]
        # no StopTransaction was made up: the stop time is the last data we had
        assert rows[0].stopped_at == T0 + timedelta(minutes=20)


async def test_every_change_leaves_an_event_for_central(
    config_factory: Callable[..., SiteConfig], version: Version
) -> None:
    from edge.storage import site_sql as repo

    async with EdgeDaemon(config_factory()) as daemon:
        async with RawCharger(ocpp_url(daemon), "CP-OUT", version) as charger:
            flow = flow_for(charger)
            await flow.boot()
            await flow.plug(1)
            tx = await flow.start(1, "TAG-OK", 0, T0)
            await flow.stop(1, tx, 3000, T0 + timedelta(minutes=30))
        rows = await daemon.store.read(lambda c: repo.outbox_rows(c, 0, 100))
    assert [r["sequence"] for r in rows] == list(range(1, len(rows) + 1))
    types = [r["type"] for r in rows]
    assert types.count("charging.started") == 1
    completed = [r for r in rows if r["type"] == "charging.completed"]
    assert [c["data"]["energy_wh"] for c in completed] == [3000.0]
