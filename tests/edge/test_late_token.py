"""OCPP 2.0.1 sessions whose token comes after the transaction started (TxStartPoint
``EVConnected``), against a running daemon and a simulated station in that mode: the
session is announced only once central can be told who charges, or once it charges or
ends without a token (free vend)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from contract.events import ChargingCompleted, ChargingStarted
from edge.config import SiteConfig
from edge.core.ids import ChargerId
from edge.daemon import EdgeDaemon
from sim.charger import SimCharger
from sim.charger.v201 import Charger201
from tests.edge.conftest import sim_charger_config
from tests.edge.site_commands import app_token, events_of, remote_start_payload, run_command
from tests.edge.test_driver_journey import failures, one_failure, online
from tests.polling import eventually


@pytest.fixture
async def edge(config_factory: Callable[..., SiteConfig]) -> AsyncIterator[EdgeDaemon]:
    async with EdgeDaemon(config_factory(ocpp={"remote_start_timeout": 3.0})) as daemon:
        yield daemon


def plug_in_charger(edge: EdgeDaemon, charger_id: str) -> SimCharger:
    """A 2.0.1 station that starts its transactions when the cable is plugged in."""
    config = sim_charger_config(edge, charger_id, "2.0.1", seed=3, tx_start_at_plug_in=True)
    return SimCharger(config)


async def started_events(edge: EdgeDaemon) -> list[ChargingStarted]:
    found = await events_of(edge, "charging.started")
    return [e for e in found if isinstance(e, ChargingStarted)]


async def completed_events(edge: EdgeDaemon) -> list[ChargingCompleted]:
    found = await events_of(edge, "charging.completed")
    return [e for e in found if isinstance(e, ChargingCompleted)]


async def told(edge: EdgeDaemon, event_type: str) -> bool:
    return bool(await events_of(edge, event_type))


async def list_tags(edge: EdgeDaemon, *tags: dict[str, Any]) -> None:
    result = await run_command(edge, "update_id_tags", {"tags": list(tags)})
    assert result.status == "accepted", result


async def test_a_card_after_plug_in_names_its_driver(edge: EdgeDaemon) -> None:
    await list_tags(
        edge, {"id_tag": "RFID-9", "status": "Accepted", "vehicle_id": "EV-9", "driver_id": "u-9"}
    )
    async with plug_in_charger(edge, "CP-LATE") as cp:
        await online(cp)
        await cp.plug_in(1)
        await cp.flush()
        tx = cp.transaction(1)
        assert tx is not None
        assert tx.id_tag is None
        session = edge.site.active_session_on(ChargerId("CP-LATE"), 1)
        assert session is not None
        assert session.id_tag is None
        assert await started_events(edge) == []  # not yet: no one to name
        await cp.start(1, "RFID-9")
        await cp.send_meter_values(1, n=2)
        await cp.stop(1, "Local")
        await cp.flush()
    await eventually(lambda: told(edge, "charging.completed"), "charging.completed")
    (started,) = await started_events(edge)
    assert (started.session_id, started.vehicle_id, started.driver_id, started.id_tag) == (
        session.id, "EV-9", "u-9", "RFID-9",
    )  # fmt: skip
    assert started.started_at == session.started_at
    (done,) = await completed_events(edge)
    assert (done.session_id, done.driver_id) == (session.id, "u-9")
    assert done.energy_wh > 0
    assert await failures(edge) == []


async def test_a_refused_card_after_plug_in_is_only_a_failure(edge: EdgeDaemon) -> None:
    await list_tags(edge, {"id_tag": "BLOCKED-9", "status": "Blocked", "driver_id": "u-3"})
    async with plug_in_charger(edge, "CP-LATE-NO") as cp:
        await online(cp)
        await cp.plug_in(1)
        await cp.flush()
        session = edge.site.active_session_on(ChargerId("CP-LATE-NO"), 1)
        assert session is not None
        await cp.start(1, "BLOCKED-9")  # the station then ends it (StopTxOnInvalidId)
        await cp.flush()
    failed = await one_failure(edge, "TokenRefused")
    assert (failed.session_id, failed.driver_id, failed.id_tag) == (session.id, "u-3", "BLOCKED-9")
    assert (
        await events_of(edge, "charging.started", "charging.progress", "charging.completed") == []
    )
    stored = await edge.store.read(
        lambda c: c.execute("SELECT id_tag, id_tag_status FROM sessions").fetchall()
    )
    assert [tuple(r) for r in stored] == [("BLOCKED-9", "Blocked")]


async def test_a_remote_start_to_a_charger_already_plugged_in(edge: EdgeDaemon) -> None:
    async with plug_in_charger(edge, "CP-LATE-APP") as cp:
        await online(cp)
        await cp.plug_in(1)
        await cp.flush()
        session = edge.site.active_session_on(ChargerId("CP-LATE-APP"), 1)
        assert session is not None
        token = app_token()
        payload = remote_start_payload(
            "CP-LATE-APP", token, vehicle_id="EV-4", driver_id="u-4", expires_in=600
        )
        result = await run_command(edge, "remote_start", payload)
        assert result.status == "accepted", result
        assert result.result["session_id"] == session.id
        updated = [
            m.payload for m in cp.sent if m.action == "TransactionEvent" and "idToken" in m.payload
        ]
        assert [(p["eventType"], p["triggerReason"]) for p in updated] == [
            ("Updated", "RemoteStart")
        ]
        assert "remoteStartId" in updated[0]["transactionInfo"]
    (started,) = await started_events(edge)
    assert (started.session_id, started.driver_id, started.id_tag) == (session.id, "u-4", token)


async def test_a_free_vend_session_is_announced_and_completed_with_energy(
    edge: EdgeDaemon,
) -> None:
    async with plug_in_charger(edge, "CP-FREE") as cp:
        protocol = cp.protocol
        assert isinstance(protocol, Charger201)
        protocol.model.set_value("AuthCtrlr", "Enabled", "false")  # no authorization
        await online(cp)
        await cp.plug_in(1)
        await cp.flush()
        assert await started_events(edge) == []
        await cp.send_meter_values(1, n=2)
        await cp.flush()
        await eventually(lambda: told(edge, "charging.started"), "charging.started on energy")
        await cp.unplug(1)
        await cp.flush()
    await eventually(lambda: told(edge, "charging.completed"), "charging.completed")
    (started,) = await started_events(edge)
    (done,) = await completed_events(edge)
    assert started.session_id == done.session_id
    assert (started.id_tag, started.driver_id, done.id_tag) == (None, None, None)
    assert done.energy_wh > 0
