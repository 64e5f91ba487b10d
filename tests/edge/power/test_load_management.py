"""Load management against the running daemon and simulated chargers of both versions:
the limits the chargers obey never add up to more than the site's, a technician's
temporary limit lowers them (and queues a car that no longer fits), and a charger that
rejects profiles is counted at its maximum while the others share the rest."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from sim.charger import SimCharger
from tests.edge.conftest import sim_charger_config
from tests.edge.power.charging import start_charging
from tests.polling import eventually

CHARGERS = {"CP-A": "1.6", "CP-B": "2.0.1", "CP-C": "1.6"}


def site(config_factory: Callable[..., SiteConfig], **power: Any) -> SiteConfig:
    return config_factory(
        chargers=[{"id": cid, "max_kw": 22} for cid in CHARGERS],
        power={"site_limit_kw": 22, "failsafe_kw": 1.0, "cycle_seconds": 1, **power},
    )


@pytest.fixture
async def charging(
    config_factory: Callable[..., SiteConfig],
) -> AsyncIterator[tuple[EdgeDaemon, dict[str, SimCharger], httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        edge = await stack.enter_async_context(EdgeDaemon(site(config_factory)))
        chargers = {}
        for cid, version in CHARGERS.items():
            config = sim_charger_config(edge, cid, version, max_power_w=22_000.0)  # type: ignore[arg-type]
            chargers[cid] = await stack.enter_async_context(SimCharger(config))
        api = await stack.enter_async_context(
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.http_port}", timeout=10)
        )
        await start_charging(chargers.values())
        yield edge, chargers, api


def limits(chargers: dict[str, SimCharger]) -> dict[str, float | None]:
    return {cid: cp.connectors[1].meter.limit_w for cid, cp in chargers.items()}


async def test_the_chargers_share_the_site_limit_and_obey_it(
    charging: tuple[EdgeDaemon, dict[str, SimCharger], httpx.AsyncClient],
) -> None:
    _, chargers, api = charging

    async def shared() -> bool:
        now = limits(chargers)
        return all(v is not None and 6_000 < v < 7_400 for v in now.values())

    await eventually(shared, "every charger obeys a third of 22 kW", within=15)
    assert sum(v or 0 for v in limits(chargers).values()) <= 22_000
    for cp in chargers.values():
        await cp.send_meter_values(1)
    assert sum(cp.connectors[1].meter.power_w for cp in chargers.values()) <= 22_000
    document = (await api.get("/api/power")).json()
    assert document["enabled"] is True
    assert document["site_limit_kw"] == 22
    site_usage = next(u for u in document["limits"] if u["name"] == "site")
    assert site_usage["used"] <= 22
    states = [s["state"] for c in document["chargers"] for s in c["sessions"]]
    assert states == ["charging"] * 3


async def test_a_temporary_limit_lowers_every_charger_and_queues_who_no_longer_fits(
    charging: tuple[EdgeDaemon, dict[str, SimCharger], httpx.AsyncClient],
) -> None:
    edge, chargers, api = charging

    async def limited() -> bool:
        return all(v is not None for v in limits(chargers).values())

    await eventually(limited, "every charger has a limit", within=15)
    lowered = await api.put("/api/power/limit", json={"site_limit_kw": 11})
    assert lowered.status_code == 200, lowered.text
    assert lowered.json()["override"]["limit_kw"] == 11

    async def within() -> bool:
        now = [v or 0 for v in limits(chargers).values()]
        return sum(now) <= 11_000 and sorted(v == 0 for v in now) == [False, False, True]

    # 3 x 4.2 kW do not fit in 11 kW: one car waits
    await eventually(within, "two chargers share 11 kW, one waits", within=15)
    document = (await api.get("/api/power")).json()
    states = sorted(s["state"] for c in document["chargers"] for s in c["sessions"])
    assert states == ["charging", "charging", "queued"]
    told = await edge.store.read(
        lambda c: c.execute("SELECT data FROM outbox WHERE type = 'power.limit_changed'").fetchall()
    )
    assert [json.loads(row[0])["limit_kw"] for row in told] == [11]
    higher = await api.put("/api/power/limit", json={"site_limit_kw": 50})
    assert higher.json()["site_limit_kw"] == 22  # never above the configured fuse
    assert (await api.delete("/api/power/limit")).json()["override"] is None
    bad = await api.put("/api/power/limit", json={"site_limit_kw": -1})
    assert bad.status_code == 422


async def test_a_charger_that_rejects_profiles_is_counted_at_its_maximum(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(
        chargers=[{"id": "CP-OK", "max_kw": 22}, {"id": "CP-NO", "max_kw": 11}],
        power={"site_limit_kw": 22, "failsafe_kw": 1.0, "cycle_seconds": 1},
    )
    async with AsyncExitStack() as stack:
        edge = await stack.enter_async_context(EdgeDaemon(config))
        ok = await stack.enter_async_context(
            SimCharger(sim_charger_config(edge, "CP-OK", "2.0.1", max_power_w=22_000.0))
        )
        refusing = await stack.enter_async_context(
            SimCharger(sim_charger_config(edge, "CP-NO", "1.6", profiles="reject"))
        )
        await start_charging((ok, refusing))

        async def limited() -> bool:
            return ok.connectors[1].meter.limit_w is not None

        await eventually(limited, "the obeying charger has a limit", within=15)
        assert (ok.connectors[1].meter.limit_w or 0) <= 22_000 - 11_000
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.http_port}") as api:
            document = (await api.get("/api/power")).json()
        by_id = {c["id"]: c for c in document["chargers"]}
        assert "Rejected" in by_id["CP-NO"]["alert"]
        assert by_id["CP-NO"]["sessions"][0]["state"] == "uncontrolled"
        events = [e["kind"] for e in (await edge_events(edge, "CP-NO"))]
        assert "power_alert" in events
        told = await edge.store.read(
            lambda c: c.execute(
                "SELECT subject FROM outbox WHERE type = 'power.overshoot'"
            ).fetchall()
        )
        assert [row[0] for row in told] == ["CP-NO"]  # central hears of it once


async def edge_events(edge: EdgeDaemon, charger_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.http_port}") as api:
        events: list[dict[str, Any]] = (await api.get(f"/api/chargers/{charger_id}/events")).json()
    return events


async def test_a_charger_that_ignores_its_limit_is_found_out_and_the_others_lowered(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(
        chargers=[{"id": "CP-OK", "max_kw": 22}, {"id": "CP-IGN", "max_kw": 22}],
        power={"site_limit_kw": 22, "failsafe_kw": 1.0, "cycle_seconds": 1, "react_seconds": 1},
    )
    async with AsyncExitStack() as stack:
        edge = await stack.enter_async_context(EdgeDaemon(config))
        ok = await stack.enter_async_context(
            SimCharger(sim_charger_config(edge, "CP-OK", "1.6", max_power_w=22_000.0))
        )
        ignoring = await stack.enter_async_context(
            SimCharger(
                sim_charger_config(edge, "CP-IGN", "2.0.1", max_power_w=22_000.0, profiles="ignore")
            )
        )
        await start_charging((ok, ignoring))
        api = await stack.enter_async_context(
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.http_port}", timeout=10)
        )

        async def found_out() -> bool:
            # it draws its 22 kW whatever it was offered, and says so in its meter values
            await ignoring.send_meter_values(1)
            await ok.send_meter_values(1)
            chargers = {c["id"]: c for c in (await api.get("/api/power")).json()["chargers"]}
            return chargers["CP-IGN"]["alert"] == "draws more than its limit"

        await eventually(found_out, "the ignoring charger found out", within=20)

        async def lowered() -> bool:
            return ok.connectors[1].meter.limit_w == 0  # 22 kW taken: the other car waits

        await eventually(lowered, "the obeying charger lowered to nothing", within=10)
        document = (await api.get("/api/power")).json()
        by_id = {c["id"]: c for c in document["chargers"]}
        assert by_id["CP-IGN"]["sessions"][0]["state"] == "uncontrolled"
        assert by_id["CP-OK"]["sessions"][0]["state"] == "queued"


async def test_limits_are_sent_again_after_a_reboot_in_the_unit_the_charger_takes(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(
        chargers=[{"id": "CP-A", "max_kw": 11}],
        power={"site_limit_kw": 22, "failsafe_kw": 1.0, "cycle_seconds": 1},
    )
    async with (
        EdgeDaemon(config) as edge,
        SimCharger(sim_charger_config(edge, "CP-A", "2.0.1", max_power_w=11_000.0)) as cp,
    ):
        async with asyncio.timeout(10):
            await cp.wait_online()

        def profiles_sent() -> list[dict[str, Any]]:
            return [e.payload for e in cp.received if e.action == "SetChargingProfile"]

        async def set_up() -> bool:
            return len(profiles_sent()) >= 2  # its maximum and the failsafe default

        await eventually(set_up, "the charger's profiles after its boot", within=10)
        asked = [e.action for e in cp.received]
        assert "GetVariables" in asked  # SmartChargingCtrlr.RateUnit: "A,W" -> amps
        purposes = {p["chargingProfile"]["chargingProfilePurpose"] for p in profiles_sent()}
        assert purposes == {"ChargingStationMaxProfile", "TxDefaultProfile"}
        units = {
            p["chargingProfile"]["chargingSchedule"][0]["chargingRateUnit"] for p in profiles_sent()
        }
        assert units == {"A"}
        before = len(profiles_sent())
        await cp.reboot("Reboot", "RemoteReset")

        async def again() -> bool:
            return len(profiles_sent()) >= before + 2

        await eventually(again, "the profiles sent again after the reboot", within=10)


async def test_a_car_that_leaves_sooner_with_more_to_take_gets_more(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(
        chargers=[{"id": "CP-SOON", "max_kw": 22}, {"id": "CP-LATE", "max_kw": 22}],
        power={"site_limit_kw": 22, "failsafe_kw": 1.0, "cycle_seconds": 1,
               "strategy": "departure"},
    )  # fmt: skip
    async with AsyncExitStack() as stack:
        edge = await stack.enter_async_context(EdgeDaemon(config))
        cars = {}
        for cid in ("CP-SOON", "CP-LATE"):
            settings = sim_charger_config(edge, cid, "2.0.1", max_power_w=22_000.0)
            cars[cid] = await stack.enter_async_context(SimCharger(settings))
        async with asyncio.timeout(10):
            for cp in cars.values():
                await cp.wait_online()
        now = datetime.now(UTC)
        for cid, hours in (("CP-SOON", 1), ("CP-LATE", 8)):
            cp = cars[cid]
            await cp.plug_in(1)
            await cp.start(1, "TAG-OK")
            needs = {
                "evseId": 1,
                "chargingNeeds": {
                    "requestedEnergyTransfer": "AC_three_phase",
                    "departureTime": (now + timedelta(hours=hours)).isoformat(),
                    "acChargingParameters": {
                        "energyAmount": 15_000, "evMinCurrent": 6, "evMaxCurrent": 32,
                        "evMaxVoltage": 400,
                    },
                },
            }  # fmt: skip
            await cp.link.send_or_log("NotifyEVChargingNeeds", needs)
            assert cp.link.responses["NotifyEVChargingNeeds"] == {"status": "Accepted"}

        def limit(cid: str) -> float:
            return cars[cid].connectors[1].meter.limit_w or 0.0

        async def by_need() -> bool:
            return limit("CP-SOON") > 2 * limit("CP-LATE") > 0

        await eventually(by_need, "the car leaving sooner gets more", within=15)
        assert limit("CP-SOON") + limit("CP-LATE") <= 22_000


async def test_a_limit_another_source_sets_on_the_station_caps_the_offer(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(
        chargers=[{"id": "CP-EMS", "max_kw": 22}],
        power={"site_limit_kw": 44, "failsafe_kw": 1.0, "cycle_seconds": 1},
    )
    async with (
        EdgeDaemon(config) as edge,
        SimCharger(sim_charger_config(edge, "CP-EMS", "2.0.1", max_power_w=22_000.0)) as cp,
    ):
        await start_charging([cp])

        def offered() -> float:
            return cp.connectors[1].meter.limit_w or 0.0

        async def at_most(watts: float) -> bool:
            return 0 < offered() <= watts

        async def full() -> bool:
            return offered() > 21_000

        await eventually(full, "the charger's whole 22 kW offered")
        limit = {
            "evseId": 1,
            "chargingLimit": {"chargingLimitSource": "EMS", "isGridCritical": True},
            "chargingSchedule": [{
                "id": 1, "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16, "numberPhases": 3}],
            }],
        }  # fmt: skip
        await cp.link.send_or_log("NotifyChargingLimit", limit)
        await eventually(lambda: at_most(16 * 230 * 3), "the offer within the EMS's 16 A")
        await cp.link.send_or_log(
            "ClearedChargingLimit", {"chargingLimitSource": "EMS", "evseId": 1}
        )
        await eventually(full, "the whole 22 kW again once the EMS lifts its limit")
