"""Every message a charger may send gets a valid CALLRESULT, never NotSupported (issue 13).

The charger-initiated actions are listed from the schema sets the ``ocpp`` package ships
(1.6 core + Security Whitepaper, all of 2.0.1) minus the central-initiated ones named below
from the specs: a schema added to the set is either answered or named here, so none is
forgotten. Each is sent with a minimal valid payload built from its schema to a running
daemon over a real websocket, and the answer is checked against the response schema by
an independent validator (fastjsonschema, not the edge's own).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final

import fastjsonschema
import httpx
import pytest

from contract.events import ChargerFirmwareStatus, ChargerLogStatus, ChargerSecurityEvent
from edge.daemon import EdgeDaemon
from ocpp_handlers import v16, v201
from ocpp_handlers.schemas import Version, known_actions
from tests.edge.conftest import ocpp_url
from tests.edge.site_commands import events_of
from tests.ocpp_client import CallErrorReceived, RawCharger
from tests.ocpp_flows import flow_for
from tests.ocpp_strategies import request_schema, schema_errors

Payload = dict[str, Any]

# The messages central sends (OCPP 1.6 edition 2 with the Security Whitepaper edition 3;
# OCPP 2.0.1 part 2): everything else in the schema set is the charger's to send.
CENTRAL_INITIATED: Final[dict[Version, frozenset[str]]] = {
    Version.V16: frozenset({
        "CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache",
        "ClearChargingProfile", "GetCompositeSchedule", "GetConfiguration", "GetDiagnostics",
        "GetLocalListVersion", "RemoteStartTransaction", "RemoteStopTransaction", "ReserveNow",
        "Reset", "SendLocalList", "SetChargingProfile", "TriggerMessage", "UnlockConnector",
        "UpdateFirmware",
        # Security Whitepaper
        "CertificateSigned", "DeleteCertificate", "ExtendedTriggerMessage",
        "GetInstalledCertificateIds", "GetLog", "InstallCertificate", "SignedUpdateFirmware",
    }),
    Version.V201: frozenset({
        "CancelReservation", "CertificateSigned", "ChangeAvailability", "ClearCache",
        "ClearChargingProfile", "ClearDisplayMessage", "ClearVariableMonitoring",
        "CostUpdated", "CustomerInformation", "DeleteCertificate", "GetBaseReport",
        "GetChargingProfiles", "GetCompositeSchedule", "GetDisplayMessages",
        "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "GetMonitoringReport",
        "GetReport", "GetTransactionStatus", "GetVariables", "InstallCertificate",
        "PublishFirmware", "RequestStartTransaction", "RequestStopTransaction", "ReserveNow",
        "Reset", "SendLocalList", "SetChargingProfile", "SetDisplayMessage",
        "SetMonitoringBase", "SetMonitoringLevel", "SetNetworkProfile",
        "SetVariableMonitoring", "SetVariables", "TriggerMessage", "UnlockConnector",
        "UnpublishFirmware", "UpdateFirmware",
    }),
}  # fmt: skip
HANDLERS: Final = {Version.V16: v16.HANDLERS, Version.V201: v201.HANDLERS}
# Values a minimal payload needs to mean something to the site (a connector, not the
# charger as a whole, where a session starts).
MEANINGFUL: Final[dict[str, Any]] = {"connectorId": 1, "evseId": 1, "id": 1}


def charger_initiated(version: Version) -> list[str]:
    return sorted(known_actions(version) - CENTRAL_INITIATED[version])


def test_every_action_of_the_schema_sets_is_answered_or_central_s_to_send() -> None:
    for version in Version:
        assert CENTRAL_INITIATED[version] <= known_actions(version)  # no typo hides one
        assert set(HANDLERS[version]) == set(charger_initiated(version)), version
    # the Security Whitepaper messages a 1.6 charger sends are in the set
    assert {
        "SecurityEventNotification",
        "SignedFirmwareStatusNotification",
        "LogStatusNotification",
        "SignCertificate",
    } <= set(charger_initiated(Version.V16))


def minimal(node: dict[str, Any], root: dict[str, Any]) -> Any:
    """The smallest valid value of a schema node: required properties only, the first
    of an enum, the fewest items."""
    if "$ref" in node:
        node = root["definitions"][node["$ref"].removeprefix("#/definitions/")]
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "object":
        properties: dict[str, Any] = node.get("properties", {})
        return {
            name: MEANINGFUL.get(name, minimal(properties[name], root))
            for name in node.get("required", ())
        }
    if kind == "array":
        return [minimal(node["items"], root) for _ in range(max(1, node.get("minItems", 0)))]
    if kind == "string":
        return "2026-11-24T08:00:00Z" if node.get("format") == "date-time" else "x"
    if kind in ("integer", "number"):
        return max(node.get("minimum", 1), 1)
    if kind == "boolean":
        return False
    return "x"  # no type: any value


@cache
def response_validator(version: Version, action: str) -> Any:
    folder = "v16" if version is Version.V16 else "v201"
    name = f"{action}Response.json"
    path = resources.files("ocpp").joinpath(folder, "schemas", name)
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema.pop("$id", None)
    return fastjsonschema.compile(schema, formats={"date-time": lambda value: True})


async def test_every_charger_message_gets_a_valid_callresult(
    edge: EdgeDaemon, api: httpx.AsyncClient, version: Version
) -> None:
    failures: dict[str, str] = {}
    async with RawCharger(ocpp_url(edge), "CP-ALL", version) as charger:
        await flow_for(charger).boot()
        for action in charger_initiated(version):
            schema = request_schema(version, action)
            payload = minimal(schema, schema)
            assert schema_errors(version, action, payload) is None, (action, payload)
            try:
                answer = await charger.call(action, payload)
                response_validator(version, action)(answer)
            except CallErrorReceived as err:
                failures[action] = f"CALLERROR {err}"
            except fastjsonschema.JsonSchemaValueException as err:
                failures[action] = f"invalid answer: {err}"
    assert failures == {}
    detail = (await api.get("/api/chargers/CP-ALL")).json()
    kinds = {e["kind"] for e in detail["events"]}
    assert {"security_event", "firmware_status", "log_status", "sign_certificate"} <= kinds


async def test_security_firmware_and_log_reports_go_upstream_in_the_charger_s_words(
    edge: EdgeDaemon, version: Version
) -> None:
    async with RawCharger(ocpp_url(edge), "CP-UP", version) as charger:
        await flow_for(charger).boot()
        await charger.call(
            "SecurityEventNotification",
            {"type": "TamperDetectionActivated", "timestamp": "2026-11-24T08:00:00Z",
             "techInfo": "lid open"},
        )  # fmt: skip
        if version is Version.V16:
            await charger.call("FirmwareStatusNotification", {"status": "Downloading"})
            await charger.call(
                "SignedFirmwareStatusNotification", {"status": "InvalidSignature", "requestId": 4}
            )
            await charger.call("DiagnosticsStatusNotification", {"status": "Uploaded"})
            await charger.call("LogStatusNotification", {"status": "Uploading", "requestId": 5})
        else:
            await charger.call(
                "FirmwareStatusNotification", {"status": "Downloading", "requestId": 3}
            )
            await charger.call(
                "FirmwareStatusNotification", {"status": "InvalidSignature", "requestId": 4}
            )
            await charger.call("LogStatusNotification", {"status": "Uploaded"})
            await charger.call("LogStatusNotification", {"status": "Uploading", "requestId": 5})
    events = await events_of(
        edge, "charger.security_event", "charger.firmware_status", "charger.log_status"
    )
    security = [e for e in events if isinstance(e, ChargerSecurityEvent)]
    assert [(e.charger_id, e.event_type, e.tech_info) for e in security] == [
        ("CP-UP", "TamperDetectionActivated", "lid open")
    ]
    assert security[0].occurred_at.isoformat() == "2026-11-24T08:00:00+00:00"
    firmware = [e for e in events if isinstance(e, ChargerFirmwareStatus)]
    assert [(e.status, e.request_id) for e in firmware] == [
        ("Downloading", None if version is Version.V16 else 3),
        ("InvalidSignature", 4),
    ]
    logs = [e for e in events if isinstance(e, ChargerLogStatus)]
    assert [(e.status, e.request_id) for e in logs] == [("Uploaded", None), ("Uploading", 5)]
    assert len(events) == len(security) + len(firmware) + len(logs)


async def test_a_certificate_signing_request_is_refused_until_the_site_has_a_ca(
    edge: EdgeDaemon, version: Version
) -> None:
    async with RawCharger(ocpp_url(edge), "CP-CSR", version) as charger:
        await flow_for(charger).boot()
        answer = await charger.call("SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST"})
    assert answer["status"] == "Rejected"


@pytest.mark.parametrize(
    ("action", "payload", "status"),
    [
        ("Get15118EVCertificate",
         {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install",
          "exiRequest": "AA=="}, "Failed"),
        ("GetCertificateStatus",
         {"ocspRequestData": {"hashAlgorithm": "SHA256", "issuerNameHash": "a",
                              "issuerKeyHash": "b", "serialNumber": "c",
                              "responderURL": "http://ocsp"}}, "Failed"),
    ],
)  # fmt: skip
async def test_2_0_1_certificate_requests_get_a_valid_refusal(
    edge: EdgeDaemon, action: str, payload: Payload, status: str
) -> None:
    async with RawCharger(ocpp_url(edge), "CP-15118", Version.V201) as charger:
        await flow_for(charger).boot()
        answer = await charger.call(action, payload)
    assert answer["status"] == status
    response_validator(Version.V201, action)(answer)
