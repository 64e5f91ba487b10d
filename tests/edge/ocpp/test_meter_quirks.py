"""Tolerant but safe meter readings against a running daemon, both versions (issue 13.6):
a sampled value with a vendor's word outside its enum keeps the message's sound readings
and is counted in /metrics; a structural error is still a CALLERROR."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from tests.edge.conftest import ocpp_url
from tests.ocpp_client import CallErrorReceived, RawCharger
from tests.ocpp_flows import flow_for, ts

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def meter_values(version: Version, tx: str, energy_wh: float, odd: dict[str, Any]) -> Any:
    """A MeterValues of the session: a sound energy register and one sample with ``odd``."""
    at = ts(T0 + timedelta(minutes=10))
    if version is Version.V16:
        return {"connectorId": 1, "transactionId": int(tx), "meterValue": [
            {"timestamp": at, "sampledValue": [
                {"value": str(energy_wh), "measurand": "Energy.Active.Import.Register",
                 "unit": "Wh", "context": "Sample.Periodic"},
                {"value": "16.000", "unit": "A", **odd},
            ]},
        ]}  # fmt: skip
    return {"evseId": 1, "meterValue": [
        {"timestamp": at, "sampledValue": [
            {"value": energy_wh, "measurand": "Energy.Active.Import.Register",
             "context": "Sample.Periodic"},
            {"value": 16.0, "unitOfMeasure": {"unit": "A"}, **odd},
        ]},
    ]}  # fmt: skip


async def quirk_count(api: httpx.AsyncClient, field: str) -> float:
    text = (await api.get("/metrics")).text
    found = re.search(rf'^evpark_ocpp_meter_quirks_total{{field="{field}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_an_alfen_current_max_keeps_the_readings_and_is_counted(
    edge: EdgeDaemon, api: httpx.AsyncClient, version: Version
) -> None:
    before = await quirk_count(api, "context")
    async with RawCharger(ocpp_url(edge), "CP-ALFEN", version) as charger:
        flow = flow_for(charger)
        await flow.boot()
        await flow.plug(1)
        tx = await flow.start(1, "TAG-OK", 1000, T0)
        odd = {"context": "CurrentMax"}
        assert await charger.call("MeterValues", meter_values(version, tx, 4000, odd)) == {}
        # another vendor word, in a field that changes what the number is: that sample
        # goes, the energy register stays
        odd = {"measurand": "Current.Import", "phase": "L1+L2"}
        assert await charger.call("MeterValues", meter_values(version, tx, 5500, odd)) == {}
        live = (await api.get("/api/sessions", params={"status": "active"})).json()
    assert [s["energy_wh"] for s in live] == [4500.0]
    assert await quirk_count(api, "context") == before + 1
    assert await quirk_count(api, "phase") >= 1


# the odd sample replaced by a broken one, with a vendor word in it too
BROKEN = {
    "missing-value": {"context": "CurrentMax"},
    "wrong-type": {"value": "1", "context": "CurrentMax", "phase": 1},
    "not-a-number": {"value": "x", "context": "CurrentMax"},  # 2.0.1 values are numbers
}


STRUCTURAL: list[tuple[Version, str]] = [
    (version, broken)
    for version in Version
    for broken in sorted(BROKEN)
    # a 1.6 value is a string: an unreadable one is skipped (edge.core.meter), not an error
    if not (broken == "not-a-number" and version is Version.V16)
]


@pytest.mark.parametrize(("version", "broken"), STRUCTURAL)
async def test_a_structural_error_is_still_a_callerror(
    edge: EdgeDaemon, version: Version, broken: str
) -> None:
    payload = meter_values(version, "1", 1000, {})
    payload["meterValue"][0]["sampledValue"][1] = BROKEN[broken]
    async with RawCharger(ocpp_url(edge), "CP-BROKEN", version) as charger:
        await flow_for(charger).boot()
        with pytest.raises(CallErrorReceived):
            await charger.call("MeterValues", payload)
