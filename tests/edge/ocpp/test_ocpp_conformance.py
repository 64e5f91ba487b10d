"""OCPP conformance of the edge, over real websockets, one test per behaviour, both versions."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from tests.edge.conftest import PASSWORD, ocpp_url
from tests.ocpp_client import CallErrorReceived, RawCharger
from tests.ocpp_flows import flow_for

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


async def _session(api: httpx.AsyncClient, charger_id: str) -> dict[str, object]:
    sessions = (await api.get("/api/sessions", params={"charger": charger_id})).json()
    assert len(sessions) == 1, sessions
    detail = (await api.get(f"/api/sessions/{sessions[0]['id']}")).json()
    assert isinstance(detail, dict)
    return detail


async def test_boot_is_accepted_with_heartbeat_interval(edge: EdgeDaemon, version: Version) -> None:
    async with RawCharger(ocpp_url(edge), "CP-BOOT", version) as charger:
        answer = await flow_for(charger).boot()
        assert answer["status"] == "Accepted"
        assert answer["interval"] == edge.config.ocpp.heartbeat_interval
        heartbeat = await charger.call("Heartbeat", {})
        assert datetime.fromisoformat(heartbeat["currentTime"]).tzinfo is not None
    assert edge.site.chargers["CP-BOOT"].info.vendor == "TestVendor"


async def test_full_session_yields_energy(
    edge: EdgeDaemon, api: httpx.AsyncClient, version: Version
) -> None:
    """boot -> plug -> authorize -> start -> meter values (kWh) -> stop: energy in Wh."""
    async with RawCharger(ocpp_url(edge), "CP-FLOW", version) as charger:
        flow = flow_for(charger)
        await flow.boot()
        await flow.plug(1)
        assert await flow.authorize("TAG-OK") == "Accepted"
        tx = await flow.start(1, "TAG-OK", 12_000, T0)
        await flow.meter(1, tx, 13.5, "kWh", T0 + timedelta(minutes=10))  # 13 500 Wh
        await flow.meter(1, tx, 14_750, "Wh", T0 + timedelta(minutes=20))
        live = (await api.get("/api/sessions", params={"status": "active"})).json()
        assert [s["energy_wh"] for s in live] == [2750.0]
        await flow.stop(1, tx, 16_000, T0 + timedelta(minutes=30))
    session = await _session(api, "CP-FLOW")
    assert session["status"] == "completed"
    assert session["energy_wh"] == 4000.0
    assert session["transaction_id"] == tx
    assert session["id_tag"] == "TAG-OK"
    energies = [m["energy_wh"] for m in session["meter_values"]]  # type: ignore[attr-defined]
    assert energies[energies.index(13_500) :][:2] == [13_500, 14_750]


async def test_unknown_id_tag_is_invalid(edge: EdgeDaemon, version: Version) -> None:
    async with RawCharger(ocpp_url(edge), "CP-AUTH", version) as charger:
        assert await flow_for(charger).authorize("NOT-A-TAG") == "Invalid"


@pytest.mark.parametrize("answer", ["Accepted", "Rejected"])
async def test_remote_start_returns_chargers_answer(
    edge: EdgeDaemon, api: httpx.AsyncClient, version: Version, answer: str
) -> None:
    async with RawCharger(
        ocpp_url(edge), "CP-REMOTE", version, responder=lambda a, p: {"status": answer}
    ) as charger:
        await flow_for(charger).boot()
        reply = await api.post(
            "/api/chargers/CP-REMOTE/remote-start", json={"id_tag": "TAG-OK", "evse_id": 1}
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["status"] == answer
        action, payload = charger.received_calls[-1]
    if version is Version.V16:
        assert (action, payload["idTag"], payload["connectorId"]) == (
            "RemoteStartTransaction",
            "TAG-OK",
            1,
        )
    else:
        assert (action, payload["idToken"]["idToken"], payload["evseId"]) == (
            "RequestStartTransaction",
            "TAG-OK",
            1,
        )


@pytest.mark.parametrize("answer", ["Accepted", "Rejected"])
async def test_remote_stop_names_the_active_transaction(
    edge: EdgeDaemon, api: httpx.AsyncClient, version: Version, answer: str
) -> None:
    async with RawCharger(
        ocpp_url(edge), "CP-RSTOP", version, responder=lambda a, p: {"status": answer}
    ) as charger:
        flow = flow_for(charger)
        await flow.boot()
        tx = await flow.start(1, "TAG-OK", 0, T0)
        reply = await api.post("/api/chargers/CP-RSTOP/remote-stop", json={})
        assert reply.status_code == 200, reply.text
        assert reply.json()["status"] == answer
        action, payload = charger.received_calls[-1]
        assert str(payload["transactionId"]) == tx
        assert action in ("RemoteStopTransaction", "RequestStopTransaction")


async def test_command_to_silent_charger_times_out(
    config_factory: Callable[..., SiteConfig], version: Version
) -> None:
    config = config_factory(ocpp={"call_timeout": 0.3})
    async with (
        EdgeDaemon(config) as daemon,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.http_port}") as api,
    ):
        async with RawCharger(ocpp_url(daemon), "CP-MUTE", version, silent=True) as charger:
            reply = await api.post("/api/chargers/CP-MUTE/reset", json={"type": "soft"})
            assert reply.status_code == 504, reply.text
            assert [a for a, _ in charger.received_calls] == ["Reset"]
        offline = await api.post("/api/chargers/CP-MUTE/reset", json={})
        assert offline.status_code == 409, offline.text


async def test_command_of_the_other_version_is_refused(
    edge: EdgeDaemon, api: httpx.AsyncClient, version: Version
) -> None:
    async with RawCharger(ocpp_url(edge), "CP-VERS", version) as charger:
        await flow_for(charger).boot()
        if version is Version.V16:
            reply = await api.post(
                "/api/chargers/CP-VERS/get-variables",
                json={
                    "variables": [{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"}]
                },
            )
        else:
            reply = await api.post("/api/chargers/CP-VERS/get-configuration", json={"keys": []})
        assert reply.status_code == 422
        assert charger.received_calls == []


@pytest.mark.parametrize(
    ("frame", "unique_id", "code16", "code201"),
    [
        ("this is not json", "-1", "FormationViolation", "RpcFrameworkError"),
        ('{"not": "an array"}', "-1", "ProtocolError", "RpcFrameworkError"),
        ('[2, "m1", "NoSuchAction", {}]', "m1", "NotImplemented", "NotImplemented"),
        ('[2, "m2", "Heartbeat", {"extra": 1}]', "m2", "FormationViolation", "FormatViolation"),
        (
            '[2, "m3", "Authorize", {}]',
            "m3",
            "OccurenceConstraintViolation",
            "OccurrenceConstraintViolation",
        ),
        (
            '[2, "m4", "Authorize", {"idTag": 5, "idToken": 5}]',
            "m4",
            "TypeConstraintViolation",
            "TypeConstraintViolation",
        ),
        ('[9, "m5", "Heartbeat", {}]', "m5", "ProtocolError", "MessageTypeNotSupported"),
        ('[2, "m6", "Heartbeat", []]', "m6", "FormationViolation", "FormatViolation"),
    ],
    ids=[
        "not-json",
        "not-array",
        "unknown-action",
        "extra-field",
        "missing-field",
        "wrong-type",
        "bad-type-id",
        "payload-not-object",
    ],
)
async def test_malformed_frames_get_the_spec_callerror(
    edge: EdgeDaemon, version: Version, frame: str, unique_id: str, code16: str, code201: str
) -> None:
    async with (
        RawCharger(ocpp_url(edge), "CP-BAD", version) as bad,
        RawCharger(ocpp_url(edge), "CP-GOOD", version) as good,
    ):
        reply = await bad.send_raw(frame, unique_id)
        assert reply[0] == 4
        assert reply[1] == unique_id
        assert reply[2] == (code16 if version is Version.V16 else code201)
        # the daemon keeps serving: the same charger and another one
        assert (await bad.call("Heartbeat", {}))["currentTime"]
        assert (await flow_for(good).boot())["status"] == "Accepted"


def _meter_values(version: Version, energy_wh: int, at: datetime) -> dict[str, object]:
    sample = {"timestamp": at.isoformat(), "sampledValue": [{"value": str(energy_wh)}]}
    if version is Version.V16:
        return {"connectorId": 1, "meterValue": [sample]}
    sample["sampledValue"] = [{"value": energy_wh}]
    return {"evseId": 1, "meterValue": [sample]}


async def test_pipelined_calls_are_answered_in_order(edge: EdgeDaemon, version: Version) -> None:
    """OCPP-J answers a charger's CALLs in the order they came, even when a charger sends
    the next before the answer to the last: meter values (answered after their commit),
    a refused one, and messages whose handlers wait on the store, mixed."""
    heartbeat = ("Heartbeat", {})
    authorize = (
        ("Authorize", {"idTag": "TAG-OK"})
        if version is Version.V16
        else ("Authorize", {"idToken": {"idToken": "TAG-OK", "type": "ISO14443"}})
    )
    refused = ("MeterValues", {"meterValue": []})  # no connector/EVSE: a schema violation
    calls = [
        ("MeterValues", _meter_values(version, 100, T0)),
        heartbeat,
        ("MeterValues", _meter_values(version, 200, T0 + timedelta(seconds=1))),
        refused,
        authorize,
        ("MeterValues", _meter_values(version, 300, T0 + timedelta(seconds=2))),
        heartbeat,
    ]
    async with websockets.connect(f"{ocpp_url(edge)}/CP-PIPE", subprotocols=[version.value]) as ws:  # type: ignore[list-item]
        for n, (action, payload) in enumerate(calls):
            await ws.send(json.dumps([2, f"p{n}", action, payload]))
        answers = [json.loads(await ws.recv()) for _ in calls]
    assert [a[1] for a in answers] == [f"p{n}" for n in range(len(calls))]
    assert [a[0] for a in answers] == [3, 3, 3, 4, 3, 3, 3]
    assert answers[4][2] == (
        {"idTagInfo": {"status": "Accepted"}}
        if version is Version.V16
        else {"idTokenInfo": {"status": "Accepted"}}
    )
    stored = await edge.store.read(
        lambda c: c.execute(
            "SELECT energy_wh FROM meter_values WHERE charger_id = 'CP-PIPE' ORDER BY id"
        ).fetchall()
    )
    assert [row[0] for row in stored] == [100.0, 200.0, 300.0]


async def test_a_failed_write_is_an_internal_error_and_serving_goes_on(
    edge: EdgeDaemon, version: Version
) -> None:
    """A charger never gets an answer for what was not stored: it gets InternalError, and
    the next message (the same charger's, its answer on the store) is served as usual."""
    with sqlite3.connect(edge.store.path) as db:
        db.execute(
            "CREATE TRIGGER refuse_samples BEFORE INSERT ON meter_values "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    async with RawCharger(ocpp_url(edge), "CP-FAIL", version) as charger:
        with pytest.raises(CallErrorReceived) as caught:
            await charger.call("MeterValues", _meter_values(version, 100, T0))
        assert caught.value.code == "InternalError"
        assert (await flow_for(charger).boot())["status"] == "Accepted"
        assert (await charger.call("Heartbeat", {}))["currentTime"]


async def test_charger_leaving_before_its_answer_harms_nothing(
    edge: EdgeDaemon, version: Version
) -> None:
    """Answers that find their connection closing are dropped; the samples are kept."""
    for n in range(5):
        async with websockets.connect(
            f"{ocpp_url(edge)}/CP-GONE", subprotocols=[version.value]
        ) as ws:  # type: ignore[list-item]
            for k in range(3):
                at = T0 + timedelta(seconds=10 * n + k)
                await ws.send(
                    json.dumps([2, f"g{k}", "MeterValues", _meter_values(version, k, at)])
                )
    async with RawCharger(ocpp_url(edge), "CP-GONE", version) as charger:
        assert (await charger.call("Heartbeat", {}))["currentTime"]

    def count(c: sqlite3.Connection) -> int:
        row = c.execute("SELECT count(*) FROM meter_values WHERE charger_id = 'CP-GONE'")
        return int(row.fetchone()[0])

    # What a closed connection had received is still handled after it closed, and may
    # finish after the new connection's first answer.
    stored = await edge.store.read(count)
    async with asyncio.timeout(10):
        while stored < 15:
            await asyncio.sleep(0.05)
            stored = await edge.store.read(count)
    assert stored == 15


async def test_semantic_error_in_valid_frame_is_a_callerror(
    edge: EdgeDaemon, version: Version
) -> None:
    async with RawCharger(ocpp_url(edge), "CP-TIME", version) as charger:
        flow = flow_for(charger)
        await flow.boot()
        if version is Version.V16:
            payload = {
                "connectorId": 1,
                "idTag": "TAG-OK",
                "meterStart": 0,
                "timestamp": "2026-13-45T99:00:00Z",
            }
            action = "StartTransaction"
        else:
            payload = {
                "timestamp": "2026-13-45T99:00:00Z",
                "connectorStatus": "Occupied",
                "evseId": 1,
                "connectorId": 1,
            }
            action = "StatusNotification"
        with pytest.raises(CallErrorReceived) as caught:
            await charger.call(action, payload)
        assert caught.value.code == "PropertyConstraintViolation"


async def test_unknown_charge_point_is_refused_without_auto_registration(
    config_factory: Callable[..., SiteConfig], version: Version
) -> None:
    config = config_factory(ocpp={"auto_register": False})
    async with EdgeDaemon(config) as daemon:
        with pytest.raises(InvalidStatus) as refused:
            async with RawCharger(ocpp_url(daemon), "CP-STRANGER", version):
                pass
        assert refused.value.response.status_code == 404
        async with RawCharger(ocpp_url(daemon), "CP-LOCKED", version, password=PASSWORD) as known:
            assert (await flow_for(known).boot())["status"] == "Accepted"


@pytest.mark.parametrize("password", [None, "wrong-password-9"])
async def test_wrong_password_is_refused_before_upgrade(
    edge: EdgeDaemon, version: Version, password: str | None
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with RawCharger(ocpp_url(edge), "CP-LOCKED", version, password=password):
            pass
    assert refused.value.response.status_code == 401
    assert "CP-LOCKED" not in edge.ocpp.connections


async def test_credentials_of_another_charger_are_refused(edge: EdgeDaemon) -> None:
    token = base64.b64encode(f"CP-OTHER:{PASSWORD}".encode()).decode()
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(
            f"{ocpp_url(edge)}/CP-LOCKED",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {token}"},
        )
    assert refused.value.response.status_code == 401


async def test_subprotocol_is_negotiated_and_required(edge: EdgeDaemon) -> None:
    async with websockets.connect(
        f"{ocpp_url(edge)}/CP-NEG",
        subprotocols=["ocpp2.0.1", "ocpp1.6"],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "ocpp2.0.1"
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(f"{ocpp_url(edge)}/CP-NEG", subprotocols=["ocpp9"])  # type: ignore[list-item]
    assert refused.value.response.status_code == 400


async def test_reconnect_replaces_the_old_connection(edge: EdgeDaemon, version: Version) -> None:
    first = RawCharger(ocpp_url(edge), "CP-TWICE", version)
    await first.__aenter__()
    async with RawCharger(ocpp_url(edge), "CP-TWICE", version) as second:
        await first.ws.wait_closed()
        assert first.ws.close_code == 4000
        assert (await flow_for(second).boot())["status"] == "Accepted"
        assert edge.site.chargers["CP-TWICE"].connected
    await first.close()


async def test_replayed_start_after_reconnect_is_recorded_once(
    edge: EdgeDaemon, api: httpx.AsyncClient
) -> None:
    """1.6 chargers resend StartTransaction they got no answer for: same transaction id."""
    async with RawCharger(ocpp_url(edge), "CP-REPLAY", Version.V16) as charger:
        flow = flow_for(charger)
        tx = await flow.start(1, "TAG-OK", 100, T0)
    async with RawCharger(ocpp_url(edge), "CP-REPLAY", Version.V16) as charger:
        flow = flow_for(charger)
        again = await flow.start(1, "TAG-OK", 100, T0)
        assert again == tx
        await flow.stop(1, tx, 1100, T0 + timedelta(hours=1))
        await flow.stop(1, tx, 1100, T0 + timedelta(hours=1))  # the stop replayed too
    session = await _session(api, "CP-REPLAY")
    assert session["energy_wh"] == 1000.0


async def test_field_quirks_are_accepted(edge: EdgeDaemon, api: httpx.AsyncClient) -> None:
    async with RawCharger(ocpp_url(edge), "CP-QUIRK", Version.V16) as charger:
        flow = flow_for(charger)
        tx = await flow.start(1, "TAG-OK", 500, T0)
        # numeric and empty values where 1.6 wants strings; transactionId -1
        await charger.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": -1,
                "meterValue": [
                    {
                        "timestamp": "2026-11-24T08:10:00Z",
                        "sampledValue": [
                            {
                                "value": 900,
                                "measurand": "Energy.Active.Import.Register",
                                "unit": "Wh",
                            },
                            {"value": "", "measurand": "Power.Active.Import"},
                        ],
                    }
                ],
            },
        )
        await charger.call(
            "StopTransaction",
            {"transactionId": -1, "meterStop": 1500, "timestamp": "2026-11-24T09:00:00Z"},
        )
        # a stop for a transaction the edge never saw is accepted and recorded
        assert (
            await charger.call(
                "StopTransaction",
                {"transactionId": 4242, "meterStop": 9, "timestamp": "2026-11-24T09:00:00Z"},
            )
            == {}
        )
    sessions = (await api.get("/api/sessions", params={"charger": "CP-QUIRK"})).json()
    by_tx = {s["transaction_id"]: s for s in sessions}
    assert by_tx[tx]["energy_wh"] == 1000.0
    assert by_tx[tx]["status"] == "completed"
    assert by_tx["4242"]["orphan"] is True


async def test_2_0_1_updated_without_started_opens_the_session(
    edge: EdgeDaemon, api: httpx.AsyncClient
) -> None:
    async with RawCharger(ocpp_url(edge), "CP-LATE", Version.V201) as charger:
        flow = flow_for(charger)
        await flow.meter(2, "tx-late-1", 5, "kWh", T0)  # Started was lost
        await flow.stop(2, "tx-late-1", 7000, T0 + timedelta(minutes=15))
    session = await _session(api, "CP-LATE")
    assert (session["evse_id"], session["energy_wh"]) == (2, 2000.0)


async def test_other_messages_are_recorded(
    edge: EdgeDaemon, api: httpx.AsyncClient, version: Version
) -> None:
    async with RawCharger(ocpp_url(edge), "CP-MISC", version) as charger:
        await flow_for(charger).boot()
        assert (await charger.call("FirmwareStatusNotification", {"status": "Downloading"})) == {}
        assert (await charger.call("DataTransfer", {"vendorId": "acme"}))[
            "status"
        ] == "UnknownVendorId"
        if version is Version.V16:
            await charger.call("DiagnosticsStatusNotification", {"status": "Uploaded"})
        else:
            await charger.call(
                "SecurityEventNotification",
                {"type": "TamperDetected", "timestamp": "2026-11-24T08:00:00Z"},
            )
            await charger.call("LogStatusNotification", {"status": "Uploaded"})
            await charger.call("NotifyEvent", {
                "generatedAt": "2026-11-24T08:00:00Z", "seqNo": 0,
                "eventData": [{"eventId": 1, "timestamp": "2026-11-24T08:00:00Z", "trigger": "Alerting",
                               "actualValue": "Faulted", "eventNotificationType": "HardWiredNotification",
                               "component": {"name": "Connector"}, "variable": {"name": "Problem"}}],
            })  # fmt: skip
            await charger.call(
                "NotifyReport", {"requestId": 1, "generatedAt": "2026-11-24T08:00:00Z", "seqNo": 0}
            )
    detail = (await api.get("/api/chargers/CP-MISC")).json()
    kinds = {e["kind"] for e in detail["events"]}
    assert {"boot", "firmware_status", "data_transfer"} <= kinds
    expected = (
        {"diagnostics_status"}
        if version is Version.V16
        else {"security_event", "log_status", "notify_event", "notify_report"}
    )
    assert expected <= kinds


async def test_status_reaches_the_charger_view(
    edge: EdgeDaemon, api: httpx.AsyncClient, version: Version
) -> None:
    async with RawCharger(ocpp_url(edge), "CP-STAT", version) as charger:
        flow = flow_for(charger)
        await flow.boot()
        await flow.plug(1)
        view = (await api.get("/api/chargers/CP-STAT")).json()
        assert view["connected"] is True
        assert [(e["evse_id"], e["status"]) for e in view["evses"]] == [(1, "occupied")]
        assert any('"Boot' in m["frame"] for m in view["messages"])
    after = (await api.get("/api/chargers/CP-STAT")).json()
    assert after["connected"] is False


async def test_health_and_metrics(edge: EdgeDaemon, api: httpx.AsyncClient) -> None:
    async with RawCharger(ocpp_url(edge), "CP-METRIC", Version.V16) as charger:
        await flow_for(charger).boot()
        await charger.send_raw("garbage")
        health = (await api.get("/healthz")).json()
        store = health.pop("store")
        assert health == {
            "status": "ok",
            "site": "test-site",
            "chargers_connected": 1,
            "active_sessions": 0,
        }
        assert (store["ok"], store["writer"], store["failed_units"]) == (True, "running", 0)
        text = (await api.get("/metrics")).text
    assert 'evpark_ocpp_connected_chargers{version="ocpp1.6"} 1.0' in text
    assert 'evpark_ocpp_messages_total{action="BootNotification",result="ok"} 1.0' in text
    assert 'evpark_ocpp_messages_total{action="(frame)",result="FormationViolation"} 1.0' in text
    assert 'evpark_ocpp_handler_seconds_count{action="BootNotification"} 1.0' in text
