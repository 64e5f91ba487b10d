"""The driver's side of the site (issue 12) against a running daemon and simulated chargers
of both OCPP versions: id tags that carry their vehicle and driver, a remote start with an
app token that is accepted only once its session began, and ``charging.failed`` for each
way a charge fails, with the events that must *not* come (a refused card is no session)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contract.events import ChargingCompleted, ChargingFailed, ChargingStarted
from edge.config import SiteConfig
from edge.core.ids import ChargerId, SlotId
from edge.core.model import AuthorizationStatus
from edge.core.slots.values import SlotState
from edge.daemon import EdgeDaemon
from edge.storage.site_sql import IdTagEntry
from edge.storage.sync_sql import StoredCommand
from edge.uplink.commands import CloudCommandRunner
from ocpp_handlers.schemas import Version
from sim.charger import SimCharger
from tests.edge.conftest import sim_charger_config
from tests.edge.site_commands import (
    app_token,
    events_of,
    remote_start_payload,
    run_command,
    wire,
)
from tests.polling import eventually

RATE = {
    "site_id": "test-site", "currency": "EUR", "energy_price_per_kwh": "0.30",
    "parking_price_per_hour": "0", "idle_fee_per_minute": "0", "idle_grace_minutes": 0,
    "timezone": "Europe/Berlin", "tou_windows": [], "updated_at": "2026-01-01T00:00:00Z",
}  # fmt: skip


@pytest.fixture
async def edge(config_factory: Callable[..., SiteConfig]) -> AsyncIterator[EdgeDaemon]:
    # a remote start that gets no session fails after 1.5 s here, not after a minute
    async with EdgeDaemon(config_factory(ocpp={"remote_start_timeout": 1.5})) as daemon:
        yield daemon


def charger(edge: EdgeDaemon, charger_id: str, version: Version) -> SimCharger:
    return SimCharger(sim_charger_config(edge, charger_id, wire(version), seed=3))


async def online(cp: SimCharger) -> SimCharger:
    async with asyncio.timeout(10):
        await cp.wait_online()
    return cp


async def failures(edge: EdgeDaemon) -> list[ChargingFailed]:
    return [e for e in await events_of(edge, "charging.failed") if isinstance(e, ChargingFailed)]


async def one_failure(edge: EdgeDaemon, code: str) -> ChargingFailed:
    async def reported() -> bool:
        return any(f.code == code for f in await failures(edge))

    await eventually(reported, f"charging.failed {code}")
    found = [f for f in await failures(edge) if f.code == code]
    assert len(found) == 1, found
    return found[0]


async def status_notification(cp: SimCharger, version: Version, **fields: Any) -> None:
    """A StatusNotification the simulator would not send by itself (a fault mid-session)."""
    now = datetime.now(UTC).isoformat()
    if version is Version.V16:
        payload = {"connectorId": 1, "errorCode": "NoError", "timestamp": now, **fields}
    else:
        payload = {"timestamp": now, "evseId": 1, "connectorId": 1, **fields}
    await cp.link.call("StatusNotification", payload)


# --- id tags and remote starts ----------------------------------------------------------------


async def test_remote_start_with_an_app_token_charges_and_names_the_driver(
    edge: EdgeDaemon, version: Version
) -> None:
    assert (await run_command(edge, "update_rates", {"rates": [RATE]})).status == "accepted"
    async with charger(edge, "CP-APP", version) as cp:
        await online(cp)
        await cp.plug_in(1)
        token = app_token()
        payload = remote_start_payload(
            "CP-APP", token, vehicle_id="EV-1", driver_id="u-1", expires_in=600
        )
        result = await run_command(edge, "remote_start", payload)
        assert result.status == "accepted", result
        session_id = result.result["session_id"]
        assert edge.site.active_session(session_id) is not None
        await cp.send_meter_values(1, n=2)
        await cp.stop(1, "Local")
        await cp.flush()

    started = await events_of(edge, "charging.started")
    assert [(e.session_id, e.vehicle_id, e.driver_id, e.id_tag) for e in started] == [  # type: ignore[union-attr]
        (session_id, "EV-1", "u-1", token)
    ]

    async def completed() -> list[ChargingCompleted]:
        found = await events_of(edge, "charging.completed")
        return [e for e in found if isinstance(e, ChargingCompleted)]

    await eventually(completed, "charging.completed")
    (done,) = await completed()
    assert (done.session_id, done.vehicle_id, done.driver_id, done.id_tag) == (
        session_id, "EV-1", "u-1", token,
    )  # fmt: skip
    assert done.energy_wh > 0
    assert done.rate is not None
    assert done.rate["energy_price_per_kwh"] == "0.30"
    assert done.rate_id == "test-site@2026-01-01T00:00:00Z"
    assert await failures(edge) == []


async def test_remote_start_with_a_card_the_site_learnt_from_central(
    edge: EdgeDaemon, version: Version
) -> None:
    tags = {
        "version": 4, "full": True,
        "tags": [{"id_tag": "RFID-7", "status": "Accepted", "expires_at": None,
                  "vehicle_id": "EV-7", "driver_id": "u-7"}],
    }  # fmt: skip
    assert (await run_command(edge, "update_id_tags", tags)).status == "accepted"
    async with charger(edge, "CP-CARD", version) as cp:
        await online(cp)
        await cp.plug_in(1)
        payload = remote_start_payload(
            "CP-CARD", "RFID-7", vehicle_id="EV-7", driver_id="u-7", expires_in=None
        )
        result = await run_command(edge, "remote_start", payload)
        assert result.status == "accepted", result
    (started,) = await events_of(edge, "charging.started")
    assert isinstance(started, ChargingStarted)
    assert (started.vehicle_id, started.driver_id, started.id_tag) == ("EV-7", "u-7", "RFID-7")
    assert started.session_id == result.result["session_id"]


async def test_a_card_from_the_list_names_its_vehicle_and_driver_at_the_charger(
    edge: EdgeDaemon, version: Version
) -> None:
    tags = {
        "version": 5, "full": False,
        "tags": [{"id_tag": "RFID-8", "status": "Accepted", "vehicle_id": "EV-8",
                  "driver_id": "u-8"}],
    }  # fmt: skip
    assert (await run_command(edge, "update_id_tags", tags)).status == "accepted"
    async with charger(edge, "CP-RFID", version) as cp:
        await online(cp)
        await cp.start(1, "RFID-8")
        await cp.flush()

    async def started() -> list[Any]:
        return await events_of(edge, "charging.started")

    await eventually(started, "charging.started")
    (event,) = await started()
    assert (event.vehicle_id, event.driver_id, event.id_tag) == ("EV-8", "u-8", "RFID-8")


# --- charging.failed, case by case ------------------------------------------------------------


async def test_a_refused_card_is_no_session_only_a_failure(
    edge: EdgeDaemon, version: Version
) -> None:
    tags = {"tags": [{"id_tag": "BLOCKED-1", "status": "Blocked", "driver_id": "u-2"}]}
    assert (await run_command(edge, "update_id_tags", tags)).status == "accepted"
    async with charger(edge, "CP-REFUSE", version) as cp:
        await online(cp)
        await cp.start(1, "BLOCKED-1")  # the simulator ends a refused start itself
        await cp.flush()
    failed = await one_failure(edge, "TokenRefused")
    assert (failed.charger_id, failed.driver_id, failed.id_tag) == ("CP-REFUSE", "u-2", "BLOCKED-1")
    assert failed.command_id is None
    assert failed.reason
    # the site keeps its own record, so the charger's later messages still match it
    sessions = await edge.store.read(
        lambda c: c.execute("SELECT id_tag_status, status FROM sessions").fetchall()
    )
    assert [tuple(r) for r in sessions] == [("Blocked", "completed")]
    assert (
        await events_of(edge, "charging.started", "charging.progress", "charging.completed") == []
    )


async def test_a_remote_start_the_charger_rejects(edge: EdgeDaemon, version: Version) -> None:
    async with charger(edge, "CP-REJECT", version) as cp:
        await online(cp)
        await cp.fault(1)  # a faulted connector refuses to start
        payload = remote_start_payload(
            "CP-REJECT", app_token(), vehicle_id="EV-1", driver_id="u-1", expires_in=600
        )
        result = await run_command(edge, "remote_start", payload)
    assert result.status == "rejected", result
    failed = await one_failure(edge, "RemoteStartRejected")
    assert failed.command_id == result.command_id
    assert (failed.vehicle_id, failed.driver_id) == ("EV-1", "u-1")


async def test_a_remote_start_to_a_charger_that_is_not_connected(edge: EdgeDaemon) -> None:
    payload = remote_start_payload(
        "CP-GONE", app_token(), vehicle_id="EV-1", driver_id="u-1", expires_in=600
    )
    result = await run_command(edge, "remote_start", payload)
    assert result.status == "failed", result
    failed = await one_failure(edge, "ChargerOffline")
    assert failed.command_id == result.command_id
    assert failed.charger_id == "CP-GONE"


async def test_a_remote_start_whose_session_never_begins(
    edge: EdgeDaemon, version: Version
) -> None:
    async with charger(edge, "CP-SLOW", version) as cp:
        await online(cp)

        async def driver_walked_away(*_: object) -> None:
            return None

        cp.remote_start = driver_walked_away  # type: ignore[method-assign]
        payload = remote_start_payload(
            "CP-SLOW", app_token(), vehicle_id="EV-1", driver_id="u-1", expires_in=600
        )
        result = await run_command(edge, "remote_start", payload)
    assert result.status == "failed", result
    assert "session_id" not in result.result
    failed = await one_failure(edge, "RemoteStartTimeout")
    assert failed.command_id == result.command_id
    assert await events_of(edge, "charging.started") == []


async def test_a_remote_start_whose_token_is_refused(edge: EdgeDaemon, version: Version) -> None:
    async with charger(edge, "CP-EXPIRED", version) as cp:
        await online(cp)
        await cp.plug_in(1)
        token = app_token()
        payload = remote_start_payload(
            "CP-EXPIRED", token, vehicle_id="EV-1", driver_id="u-1", expires_in=-60
        )
        result = await run_command(edge, "remote_start", payload)
        await cp.stop(1, "DeAuthorized")
        await cp.flush()
    assert result.status == "failed", result
    assert result.result["code"] == "TokenRefused"
    failed = await one_failure(edge, "TokenRefused")  # one event, naming the command
    assert (failed.command_id, failed.id_tag, failed.vehicle_id) == (
        result.command_id, token, "EV-1",
    )  # fmt: skip
    assert await events_of(edge, "charging.started", "charging.completed") == []


async def test_a_fault_during_a_session(edge: EdgeDaemon, version: Version) -> None:
    async with charger(edge, "CP-FAULT", version) as cp:
        await online(cp)
        await cp.start(1, "TAG-OK")
        await cp.send_meter_values(1, n=1)
        if version is Version.V16:
            await status_notification(cp, version, errorCode="GroundFailure", status="Faulted")
        else:
            await status_notification(cp, version, connectorStatus="Faulted")
        await cp.flush()
        session = edge.site.active_session_on(ChargerId("CP-FAULT"), 1)
    failed = await one_failure(edge, "ConnectorFault")
    assert session is not None
    assert failed.session_id == session.id
    assert failed.id_tag == "TAG-OK"


async def test_an_ev_error_during_a_session(edge: EdgeDaemon, version: Version) -> None:
    async with charger(edge, "CP-EV", version) as cp:
        await online(cp)
        tx = await cp.start(1, "TAG-OK")
        await cp.send_meter_values(1, n=1)
        if version is Version.V16:
            await status_notification(
                cp, version, errorCode="EVCommunicationError", status="SuspendedEV"
            )
        else:
            await cp.link.call(
                "TransactionEvent",
                {
                    "eventType": "Updated", "timestamp": datetime.now(UTC).isoformat(),
                    "triggerReason": "EVCommunicationLost", "seqNo": 99,
                    "transactionInfo": {"transactionId": str(tx.key)},
                },
            )  # fmt: skip
        await cp.flush()
    failed = await one_failure(edge, "EVError")
    assert failed.session_id is not None
    assert failed.charger_id == "CP-EV"


async def test_a_session_ended_before_any_energy_flowed(edge: EdgeDaemon, version: Version) -> None:
    async with charger(edge, "CP-EARLY", version) as cp:
        await online(cp)
        await cp.start(1, "TAG-OK")
        await cp.unplug(1)  # EVDisconnected, nothing charged
        await cp.flush()
    failed = await one_failure(edge, "EndedBeforeCharging")
    assert failed.session_id is not None
    assert failed.id_tag == "TAG-OK"
    assert await events_of(edge, "charging.completed") == []
    assert len(await events_of(edge, "charging.started")) == 1


async def test_a_reservation_names_its_vehicle_and_driver(
    config_factory: Callable[..., SiteConfig],
) -> None:
    # an EV slot whose charger says it is Available is free (no sensor needed)
    slots = [{"id": "P1", "type": "ev", "charger": "CP-RES", "evse": 1}]
    config = config_factory(slots=slots, chargers=[{"id": "CP-RES"}])
    async with EdgeDaemon(config) as edge:
        async with charger(edge, "CP-RES", Version.V16) as cp:
            await online(cp)

            async def free() -> bool:
                assert edge.slots.model is not None
                return edge.slots.model.view(SlotId("P1")).state is SlotState.FREE

            await eventually(free, "the slot is free")
            reserve = {
                "reservation_id": "R-9", "vehicle_id": "EV-9", "driver_id": "u-9",
                "ends_at": "2099-01-01T00:00:00Z",
            }  # fmt: skip
            reserved = await run_command(edge, "reserve", reserve)
            assert reserved.status == "accepted", reserved
            cancel = {"reservation_id": "R-9"}
            assert (await run_command(edge, "cancel_reservation", cancel)).status == "accepted"
        events = await events_of(edge, "parking.reserved", "parking.released")
    subjects = [(e.TYPE, e.vehicle_id, e.driver_id) for e in events]  # type: ignore[union-attr]
    assert subjects == [("parking.reserved", "EV-9", "u-9"), ("parking.released", "EV-9", "u-9")]


def test_only_a_remote_start_runs_beside_the_command_queue() -> None:
    def command(command_type: str) -> StoredCommand:
        return StoredCommand("c-1", command_type, {}, datetime.now(UTC), "received")

    assert CloudCommandRunner.waits_long(command("remote_start"))
    for other in ("reserve", "cancel_reservation", "remote_stop", "update_id_tags"):
        assert not CloudCommandRunner.waits_long(command(other))


async def test_an_older_id_tag_list_never_undoes_a_newer_one(edge: EdgeDaemon) -> None:
    """Two lists central made at once may arrive in either order."""

    def listed(version: int, status: str) -> dict[str, Any]:
        return {"version": version, "full": False,
                "tags": [{"id_tag": "RFID-9", "status": status, "vehicle_id": "EV-9",
                          "driver_id": "u-9"}]}  # fmt: skip

    assert (await run_command(edge, "update_id_tags", listed(5, "Blocked"))).status == "accepted"
    stale = await run_command(edge, "update_id_tags", listed(4, "Accepted"))
    assert stale.status == "accepted"
    assert stale.result["stale"] is True
    assert edge.site.authorize("RFID-9").value == "Blocked"
    assert (await run_command(edge, "update_id_tags", listed(6, "Accepted"))).status == "accepted"
    assert edge.site.authorize("RFID-9").value == "Accepted"


async def test_app_tokens_long_expired_are_forgotten_when_a_new_one_comes(
    edge: EdgeDaemon,
) -> None:
    """One token per remote start must not pile up in the site's list for ever."""
    now = edge.site.clock()
    old = IdTagEntry(AuthorizationStatus.ACCEPTED, now - timedelta(days=2), "central", "EV-1")
    recent = IdTagEntry(AuthorizationStatus.ACCEPTED, now - timedelta(hours=1), "central", "EV-1")
    await edge.site.grant_id_tag("A-OLD", old)
    await edge.site.grant_id_tag("A-RECENT", recent)
    await edge.site.grant_id_tag("A-NEW", IdTagEntry(AuthorizationStatus.ACCEPTED, None, "central"))

    stored = await edge.store.read(
        lambda c: {r[0] for r in c.execute("SELECT id_tag FROM id_tags")}
    )
    assert "A-OLD" not in stored
    assert {"A-RECENT", "A-NEW"} <= stored
    assert edge.site.authorize("A-RECENT").value == "Expired"  # still says why, for a day
    assert edge.site.authorize("A-OLD").value == "Invalid"


async def test_a_car_unplugged_after_charging_is_a_completed_session_not_a_failure(
    edge: EdgeDaemon, version: Version
) -> None:
    """A 2.0.1 station reports a pulled cable with triggerReason EVCommunicationLost: at
    the end of a charge that is the normal end, not an EV error."""
    async with charger(edge, "CP-DONE", version) as cp:
        await online(cp)
        await cp.start(1, "TAG-OK")
        await cp.send_meter_values(1, n=2)
        await cp.unplug(1)
        await cp.flush()

    async def completed() -> list[Any]:
        return await events_of(edge, "charging.completed")

    await eventually(completed, "charging.completed")
    assert await events_of(edge, "charging.failed") == []
