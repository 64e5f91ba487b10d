"""OCPP 2.0.1: messages from charging stations into the site model, and commands out."""

from __future__ import annotations

from typing import Any, Final

from edge.core import commands as cmd
from edge.core.meter import ENERGY, MeterReading, SampledValue, normalise, reading
from edge.core.model import ChargerInfo, ConnectorStatus
from ocpp_handlers import firmware, profiles, reports
from ocpp_handlers.base import (
    Answer,
    Handler,
    HandlerContext,
    OcppError,
    Payload,
    boot_interval,
    note_quirks,
    now_iso,
    parse_time,
)

CONNECTOR_STATUS: Final = {
    "Available": ConnectorStatus.AVAILABLE,
    "Occupied": ConnectorStatus.OCCUPIED,
    "Reserved": ConnectorStatus.RESERVED,
    "Unavailable": ConnectorStatus.UNAVAILABLE,
    "Faulted": ConnectorStatus.FAULTED,
}
CHARGING_STATE: Final = {
    "Charging": ConnectorStatus.CHARGING,
    "EVConnected": ConnectorStatus.OCCUPIED,
    "SuspendedEV": ConnectorStatus.SUSPENDED_EV,
    "SuspendedEVSE": ConnectorStatus.SUSPENDED_EVSE,
    "Idle": ConnectorStatus.OCCUPIED,
}


def readings(meter_values: list[dict[str, Any]]) -> list[MeterReading]:
    out: list[MeterReading] = []
    for entry in meter_values:
        at = parse_time(entry["timestamp"], "meterValue.timestamp")
        samples: list[SampledValue] = []
        for sample in entry["sampledValue"]:
            measurand = sample.get("measurand", ENERGY)
            unit = sample.get("unitOfMeasure", {})
            value = normalise(
                measurand, sample["value"], unit.get("unit"), unit.get("multiplier", 0)
            )
            if value is not None:
                samples.append(
                    SampledValue(measurand, value, sample.get("phase"), sample.get("context"))
                )
        out.append(reading(at, samples))
    return out


def _id_token_info(ctx: HandlerContext, token: str) -> Payload:
    return {"idTokenInfo": {"status": ctx.site.authorize(token).value}}


async def boot_notification(ctx: HandlerContext, p: Payload) -> Payload:
    station = p["chargingStation"]
    modem = station.get("modem", {})
    info = ChargerInfo(
        vendor=station["vendorName"],
        model=station["model"],
        serial=station.get("serialNumber", ""),
        firmware=station.get("firmwareVersion", ""),
        extra={k: v for k, v in modem.items() if k in ("iccid", "imsi")},
    )
    status = await ctx.site.boot(ctx.charger_id, info, reason=p["reason"])
    return {
        "status": status.value,
        "currentTime": now_iso(ctx.site),
        "interval": boot_interval(ctx, status),
    }


async def heartbeat(ctx: HandlerContext, p: Payload) -> Payload:
    await ctx.site.heartbeat(ctx.charger_id)
    return {"currentTime": now_iso(ctx.site)}


async def status_notification(ctx: HandlerContext, p: Payload) -> Payload:
    evse_id = p["evseId"]
    status = CONNECTOR_STATUS[p["connectorStatus"]]
    # "Occupied" says a cable is in; while a session charges, keep the richer state
    # that TransactionEvent reported.
    current = ctx.site.evse_of(ctx.charger_id, evse_id)
    session = ctx.site.active_session_on(ctx.charger_id, evse_id)
    if status is ConnectorStatus.OCCUPIED and current is not None and session is not None:
        status = current.status
    await ctx.site.connector_status(
        ctx.charger_id,
        evse_id=evse_id,
        connector_id=p["connectorId"],
        status=status,
        error_code="Faulted" if status is ConnectorStatus.FAULTED else None,
        at=parse_time(p["timestamp"], "timestamp"),
    )
    return {}


async def authorize(ctx: HandlerContext, p: Payload) -> Payload:
    return _id_token_info(ctx, p["idToken"]["idToken"])


# TransactionEvent triggerReason values that are the EV side failing during a session
# (charging.failed ``EVError``); a fault's stoppedReason is judged by the site.
# EVCommunicationLost is how a station reports the cable pulled out, too: it is an error
# only while the transaction goes on (an Updated); on an Ended it is the normal end.
EV_ERROR_TRIGGERS: Final = frozenset({"EVCommunicationLost", "EVConnectTimeout"})
EV_ERROR_ONLY_MIDWAY: Final = frozenset({"EVCommunicationLost"})


async def transaction_event(ctx: HandlerContext, p: Payload) -> Payload:
    """A transaction's start, updates and end. A station that starts transactions at
    plug-in (TxStartPoint ``EVConnected``) sends the token only in a later ``Updated``
    (or the ``Ended``): the session is opened without one, central hears of it once the
    token comes (see :mod:`edge.services.sessions`), and the token is judged before the
    message's meter values so that a charge is never announced without its driver."""
    note_quirks(ctx, "TransactionEvent", p)
    info = p["transactionInfo"]
    transaction_id: str = info["transactionId"]
    at = parse_time(p["timestamp"], "timestamp")
    token = p.get("idToken", {}).get("idToken") or None
    evse = p.get("evse", {})
    values = readings(p.get("meterValue", []))
    site, charger = ctx.site, ctx.charger_id
    session = site.resolve_transaction(charger, transaction_id)
    event_type = p["eventType"]
    if session is None and event_type != "Ended":
        # Started, or an Updated whose Started we never got: open the session now.
        if "id" not in evse:
            raise OcppError("OccurrenceConstraintViolation", "evse is required to start")
        session, _ = await site.start_session(
            charger,
            evse_id=evse["id"],
            connector_id=evse.get("connectorId", 1),
            id_tag=token,
            started_at=at,
            version=ctx.version.value,
            transaction_id=transaction_id,
            reservation_id=p.get("reservationId"),
            announce=token is not None,
        )
    late_token: Payload | None = None
    if session is not None and token is not None and session.id_tag is None:
        status = await site.token_arrived(session, token, at)
        late_token = {"idTokenInfo": {"status": status.value}}
    if session is not None and event_type != "Ended" and values:
        await site.meter_values(charger, session.evse_id, values, transaction_id)
    trigger: str = p["triggerReason"]  # required by the schema
    ev_error = trigger in EV_ERROR_TRIGGERS and not (
        event_type == "Ended" and trigger in EV_ERROR_ONLY_MIDWAY
    )
    if session is not None and ev_error:
        await site.session_failed(session, "EVError", trigger)
    state = info.get("chargingState")
    if session is not None and state in CHARGING_STATE:
        await site.charging_state(charger, session.evse_id, CHARGING_STATE[state])
    if event_type == "Ended":
        await site.stop_session(
            charger,
            transaction_id=transaction_id,
            stopped_at=at,
            reason=info.get("stoppedReason", "Local"),
            id_tag=token,
            readings=values,
            evse_id=evse.get("id"),
        )
    if late_token is not None:
        return late_token
    return _id_token_info(ctx, token) if token else {}


def meter_values(ctx: HandlerContext, p: Payload) -> Answer:
    note_quirks(ctx, "MeterValues", p)
    _, stored = ctx.site.record_meter_values(ctx.charger_id, p["evseId"], readings(p["meterValue"]))
    return Answer({}, stored)


HANDLERS: Final[dict[str, Handler]] = {
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize,
    "TransactionEvent": transaction_event,
    "MeterValues": meter_values,
    "DataTransfer": reports.data_transfer,
    "SecurityEventNotification": reports.security_event,
    "FirmwareStatusNotification": reports.firmware_status,
    "LogStatusNotification": reports.log_status,
    "SignCertificate": reports.sign_certificate,
    # no ISO 15118 certificates yet: a valid refusal, the EV charges without Plug & Charge
    "Get15118EVCertificate": reports.recorder(
        "ev_certificate", {"status": "Failed", "exiResponse": ""}
    ),
    "GetCertificateStatus": reports.recorder("certificate_status", {"status": "Failed"}),
    # reports and notices: kept for the technician
    "NotifyReport": reports.notify_report,
    "NotifyEvent": reports.recorder("notify_event"),
    "NotifyMonitoringReport": reports.recorder("notify_monitoring_report"),
    "NotifyCustomerInformation": reports.recorder("notify_customer_information"),
    "NotifyDisplayMessages": reports.recorder("notify_display_messages"),
    "ReportChargingProfiles": reports.recorder("report_charging_profiles"),
    "ReservationStatusUpdate": reports.recorder("reservation_status"),
    "PublishFirmwareStatusNotification": reports.recorder("publish_firmware_status"),
    # limits and needs: kept; the site plans no ISO 15118 schedule (Rejected: "service
    # not available"), and an EV's own schedule is taken note of
    "NotifyChargingLimit": reports.charging_limit,
    "ClearedChargingLimit": reports.charging_limit_cleared,
    "NotifyEVChargingNeeds": reports.ev_charging_needs,
    "NotifyEVChargingSchedule": reports.recorder("ev_charging_schedule", {"status": "Accepted"}),
}


# --- commands ------------------------------------------------------------------------


def _variable(ref: cmd.VariableRef) -> Payload:
    component: Payload = {"name": ref.component}
    if ref.evse_id is not None:
        component["evse"] = {"id": ref.evse_id}
    variable: Payload = {"name": ref.variable}
    if ref.instance is not None:
        variable["instance"] = ref.instance
    return {"component": component, "variable": variable}


def _local_entry(entry: cmd.LocalListEntry) -> Payload:
    """A local list entry; without a status it removes the token (Differential)."""
    item: Payload = {"idToken": {"idToken": entry.id_tag, "type": "Central"}}
    if entry.status is not None:
        info: Payload = {"status": entry.status}
        if entry.expires_at is not None:
            info["cacheExpiryDateTime"] = entry.expires_at.isoformat()
        item["idTokenInfo"] = info
    return item


def to_call(command: cmd.Command) -> tuple[str, Payload]:
    if (same := cmd.call_of_both_versions(command)) is not None:
        return same
    if (profile_call := profiles.to_call_v201(command)) is not None:
        return profile_call
    match command:
        case cmd.RemoteStart(id_tag=id_tag, evse_id=evse_id, remote_start_id=remote_id):
            payload: Payload = {
                "idToken": {"idToken": id_tag, "type": "Central"},
                "remoteStartId": remote_id if remote_id is not None else 1,
            }
            if evse_id is not None:
                payload["evseId"] = evse_id
            return "RequestStartTransaction", payload
        case cmd.RemoteStop(transaction_id=transaction_id):
            return "RequestStopTransaction", {"transactionId": transaction_id}
        case cmd.Reset(hard=hard):
            return "Reset", {"type": "Immediate" if hard else "OnIdle"}
        case cmd.Unlock(evse_id=evse_id, connector_id=connector_id):
            return "UnlockConnector", {"evseId": evse_id, "connectorId": connector_id}
        case cmd.ChangeAvailability(operative=operative, evse_id=evse_id):
            payload = {"operationalStatus": "Operative" if operative else "Inoperative"}
            if evse_id:
                payload["evse"] = {"id": evse_id}
            return "ChangeAvailability", payload
        case cmd.TriggerMessage(message=message, evse_id=evse_id):
            payload = {"requestedMessage": message}
            if evse_id is not None:
                payload["evse"] = {"id": evse_id}
            return "TriggerMessage", payload
        case cmd.GetVariables(variables=refs):
            return "GetVariables", {"getVariableData": [_variable(r) for r in refs]}
        case cmd.SetVariables(variables=refs):
            data = [{**_variable(r), "attributeValue": r.value or ""} for r in refs]
            return "SetVariables", {"setVariableData": data}
        case cmd.ReserveNow(reservation_id=rid, evse_id=evse_id, id_tag=id_tag, expires_at=exp):
            return "ReserveNow", {
                "id": rid,
                "expiryDateTime": exp.isoformat(),
                "idToken": {"idToken": id_tag, "type": "Central"},
                "evseId": evse_id,
            }
        case cmd.CancelReservation(reservation_id=rid):
            return "CancelReservation", {"reservationId": rid}
        case cmd.SendLocalList(version=version, full=full, entries=entries):
            return "SendLocalList", {
                "versionNumber": version,
                "updateType": "Full" if full else "Differential",
                "localAuthorizationList": [_local_entry(e) for e in entries],
            }
        case cmd.GetTransactionStatus(transaction_id=transaction_id):
            return "GetTransactionStatus", (
                {} if transaction_id is None else {"transactionId": transaction_id}
            )
        case cmd.GetLog() as get:
            return cmd.log_call(get)
        case cmd.UpdateFirmware():
            payload = firmware.with_request_id(command, signature_required=False)
            return "UpdateFirmware", payload
        case cmd.GetConfiguration() | cmd.ChangeConfiguration():
            raise cmd.UnsupportedCommand(
                "configuration keys are OCPP 1.6; use variables with an OCPP 2.0.1 station"
            )
    raise cmd.UnsupportedCommand(type(command).__name__)


def outcome(action: str, response: Payload) -> cmd.CommandOutcome:
    if action == "GetVariables":
        results = response.get("getVariableResult", [])
        ok = all(r.get("attributeStatus") == "Accepted" for r in results)
        return cmd.CommandOutcome("Accepted" if ok else "Rejected", response)
    if action == "SetVariables":
        results = response.get("setVariableResult", [])
        statuses = {r.get("attributeStatus") for r in results}
        status = "Accepted" if statuses <= {"Accepted"} else "/".join(sorted(map(str, statuses)))
        return cmd.CommandOutcome(status, response)
    if action == "GetLog":
        return cmd.log_outcome(response)
    if action == "GetLocalListVersion":
        version = response["versionNumber"]
        return cmd.CommandOutcome("Accepted", {**response, "list_version": version})
    return cmd.CommandOutcome(str(response.get("status", "Accepted")), response)
