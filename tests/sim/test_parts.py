"""The simulator's plain parts, without a network: charging curves and the meter, the
reconnect backoff, the offline queue, fleet configs, and the independent schema check."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sim.charger import OcppVersion, SimCharger, SimChargerConfig
from sim.charger.curve import AcCurve, ConnectorMeter, DcCurve
from sim.charger.fleet import FleetOptions, fleet_configs
from sim.charger.offline_queue import OfflineQueue, QueuedMessage
from sim.charger.schemas import SchemaViolation, UnknownAction, validate


def test_curves_and_meter_are_monotonic() -> None:
    meter = ConnectorMeter(curve=DcCurve(max_power_w=50_000), register_wh=1000.0)
    meter.plug(soc=40.0, capacity_wh=60_000.0)
    registers, powers = [], []
    for _ in range(40):
        sample = meter.advance(300)
        registers.append(sample.energy_wh)
        powers.append(sample.power_w)
    assert registers == sorted(registers)
    assert powers[0] == 50_000  # tapers as SoC rises
    assert powers[-1] < powers[0]
    assert meter.soc == 100.0
    assert meter.advance(300).power_w == 0.0
    assert AcCurve(22_000).power_w(50.0) == 22_000
    ac = ConnectorMeter(curve=AcCurve(11_000))
    assert round(ac.advance(3600).energy_wh) == 11_000
    assert round(ac.sample().current_a, 1) == 15.9  # 11 kW on three phases at 230 V


def test_reconnect_backoff_grows_with_jitter_and_resets() -> None:
    settings = SimChargerConfig("CP-1", backoff_initial=1.0, backoff_max=8.0)
    backoff = SimCharger(settings, rng=random.Random(3)).link.backoff
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 1.0


async def test_offline_queue_drops_periodic_samples_first() -> None:
    queue = OfflineQueue(max_items=3)
    start = QueuedMessage("StartTransaction", {}, "t")
    samples = [QueuedMessage("MeterValues", {"n": i}, "t", droppable=True) for i in range(2)]
    stop = QueuedMessage("StopTransaction", {}, "t")
    for message in [start, *samples, stop]:
        queue.append(message)
    assert [m.action for m in queue.items()] == [
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
    ]
    assert queue.items()[1].payload == {"n": 1}
    assert queue.dropped == 1


def test_fleet_ids_versions_and_seeds() -> None:
    configs = fleet_configs(FleetOptions(count=3, version="mixed", prefix="X", seed=5))
    assert [(c.charge_point_id, c.version) for c in configs] == [
        ("X-16-001", "1.6"),
        ("X-201-001", "2.0.1"),
        ("X-16-002", "1.6"),
    ]
    assert configs == fleet_configs(FleetOptions(count=3, version="mixed", prefix="X", seed=5))
    assert [c.charge_point_id for c in fleet_configs(FleetOptions(ids=("CP-1",)))] == ["CP-1"]


@pytest.mark.parametrize(
    ("version", "action", "valid", "invalid"),
    [
        (
            "1.6",
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
            {"connectorId": 1, "errorCode": "NoError", "status": "Resting"},
        ),
        (
            "2.0.1",
            "StatusNotification",
            {
                "timestamp": "2026-01-02T03:04:05.678Z",
                "connectorStatus": "Available",
                "evseId": 1,
                "connectorId": 1,
            },
            {
                "timestamp": "yesterday",  # the date-time format is checked too
                "connectorStatus": "Available",
                "evseId": 1,
                "connectorId": 1,
            },
        ),
    ],
)
def test_schemas_check_every_frame_against_the_official_schema(
    version: OcppVersion, action: str, valid: dict[str, Any], invalid: dict[str, Any]
) -> None:
    validate(version, action, "request", valid)
    with pytest.raises(SchemaViolation, match=f"OCPP {version} {action} request"):
        validate(version, action, "request", invalid)
    validate(version, action, "response", {})
    with pytest.raises(UnknownAction):
        validate(version, "Teleport", "request", {})
