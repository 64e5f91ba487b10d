"""The simulated chargers obey charging profiles as a real one would, in both versions:
the power in their meter values follows the composite limit, a TxProfile ends with its
transaction, the composite schedule is reported, and a charger set to reject or ignore
profiles does so (the load manager's fallbacks are tested with those)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from sim.charger import SimCharger
from tests.sim.csms import WAIT, MiniCsms, config


def set_profile(version: str, evse: int, pid: int, purpose: str, amps: float) -> dict[str, Any]:
    schedule = {
        "chargingRateUnit": "A",
        "startSchedule": datetime.now(UTC).isoformat(),
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": amps}],
    }
    common = {"stackLevel": 0, "chargingProfilePurpose": purpose, "chargingProfileKind": "Absolute"}
    if version == "1.6":
        profile = {"chargingProfileId": pid, **common, "chargingSchedule": schedule}
        return {"connectorId": evse, "csChargingProfiles": profile}
    profile = {"id": pid, **common, "chargingSchedule": [{"id": pid, **schedule}]}
    return {"evseId": evse, "chargingProfile": profile}


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_the_power_follows_the_profiles_and_the_composite_is_reported(
    csms: MiniCsms, version: str
) -> None:
    cfg = config(csms, version, max_power_w=22_000.0)
    async with SimCharger(cfg) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        cp = charger.id
        station_max = "ChargePointMaxProfile" if version == "1.6" else "ChargingStationMaxProfile"
        answer = await csms.result(
            cp, "SetChargingProfile", set_profile(version, 0, 1, station_max, 16)
        )
        assert answer == {"status": "Accepted"}
        default = set_profile(version, 1, 2, "TxDefaultProfile", 10)
        assert (await csms.result(cp, "SetChargingProfile", default))["status"] == "Accepted"
        await charger.plug_in(1)
        await charger.start(1, "DEMO-TAG-1")
        await charger.send_meter_values(1)
        assert charger.connectors[1].meter.power_w == pytest.approx(10 * 230 * 3)
        key = "connectorId" if version == "1.6" else "evseId"
        composite = await csms.result(
            cp, "GetCompositeSchedule", {key: 1, "duration": 600, "chargingRateUnit": "A"}
        )
        assert composite["status"] == "Accepted"
        schedule = composite["chargingSchedule"] if version == "1.6" else composite["schedule"]
        assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 10.0}]
        cleared = await csms.result(
            cp, "ClearChargingProfile", {"id": 2} if version == "1.6" else {"chargingProfileId": 2}
        )
        assert cleared == {"status": "Accepted"}
        await charger.send_meter_values(1)
        assert charger.connectors[1].meter.power_w == pytest.approx(16 * 230 * 3)  # the max caps it
        again = await csms.result(
            cp, "ClearChargingProfile", {"id": 2} if version == "1.6" else {"chargingProfileId": 2}
        )
        assert again == {"status": "Unknown"}


@pytest.mark.parametrize(("version", "behaviour"), [("1.6", "reject"), ("2.0.1", "ignore")])
async def test_a_charger_can_be_set_to_reject_or_ignore_profiles(
    csms: MiniCsms, version: str, behaviour: str
) -> None:
    cfg = config(csms, version, max_power_w=22_000.0, profiles=behaviour)
    async with SimCharger(cfg) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        answer = await csms.result(
            charger.id, "SetChargingProfile", set_profile(version, 1, 3, "TxDefaultProfile", 6)
        )
        assert answer == {"status": "Rejected" if behaviour == "reject" else "Accepted"}
        await charger.plug_in(1)
        await charger.start(1, "DEMO-TAG-1")
        await charger.send_meter_values(1)
        assert charger.connectors[1].meter.power_w == pytest.approx(22_000.0)


async def test_a_201_charger_reports_its_profiles(csms: MiniCsms) -> None:
    async with SimCharger(config(csms, "2.0.1")) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        cp = charger.id
        none = await csms.result(cp, "GetChargingProfiles", {"requestId": 1, "chargingProfile": {}})
        assert none == {"status": "NoProfiles"}
        await csms.result(
            cp, "SetChargingProfile", set_profile("2.0.1", 1, 4, "TxDefaultProfile", 12)
        )
        asked = {"requestId": 2, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}}
        assert await csms.result(cp, "GetChargingProfiles", asked) == {"status": "Accepted"}
        (report,) = await csms.wait_for(cp, "ReportChargingProfiles")
        assert report.payload["requestId"] == 2
        assert [p["id"] for p in report.payload["chargingProfile"]] == [4]
