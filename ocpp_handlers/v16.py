"""OCPP 1.6J: messages from chargers into the site model, and commands out to them."""

from __future__ import annotations

from typing import Any, Final

from edge.core import commands as cmd
from edge.core.meter import ENERGY, MeterReading, SampledValue, normalise, reading
from edge.core.model import ChargerInfo, ConnectorStatus
from ocpp_handlers import firmware, profiles, quirks, reports
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

STATUS: Final = {
    "Available": ConnectorStatus.AVAILABLE,
    "Preparing": ConnectorStatus.OCCUPIED,
    "Charging": ConnectorStatus.CHARGING,
    "SuspendedEV": ConnectorStatus.SUSPENDED_EV,
    "SuspendedEVSE": ConnectorStatus.SUSPENDED_EVSE,
    "Finishing": ConnectorStatus.FINISHING,
    "Reserved": ConnectorStatus.RESERVED,
    "Unavailable": ConnectorStatus.UNAVAILABLE,
    "Faulted": ConnectorStatus.FAULTED,
}


def fix_quirks(action: str, payload: Payload) -> bool:
    """Repair 1.6 values sent as numbers (:mod:`ocpp_handlers.quirks.numeric_value`);
    True if anything was changed. Called only when the message fails as sent."""
    return quirks.repair_numbers(action, payload)


def readings(meter_values: list[dict[str, Any]]) -> list[MeterReading]:
    out: list[MeterReading] = []
    for entry in meter_values:
        at = parse_time(entry["timestamp"], "meterValue.timestamp")
        samples: list[SampledValue] = []
        for sample in entry["sampledValue"]:
            measurand = sample.get("measurand", ENERGY)
            value = normalise(measurand, sample["value"], sample.get("unit"))
            if value is not None:
                samples.append(
                    SampledValue(measurand, value, sample.get("phase"), sample.get("context"))
                )
        out.append(reading(at, samples))
    return out


async def boot_notification(ctx: HandlerContext, p: Payload) -> Payload:
    info = ChargerInfo(
        vendor=p["chargePointVendor"],
        model=p["chargePointModel"],
        serial=p.get("chargePointSerialNumber") or p.get("chargeBoxSerialNumber") or "",
        firmware=p.get("firmwareVersion", ""),
        extra={k: p[k] for k in ("iccid", "imsi", "meterType", "meterSerialNumber") if k in p},
    )
    status = await ctx.site.boot(ctx.charger_id, info, reason="")
    return {
        "status": status.value,
        "currentTime": now_iso(ctx.site),
        "interval": boot_interval(ctx, status),
    }


async def heartbeat(ctx: HandlerContext, p: Payload) -> Payload:
    await ctx.site.heartbeat(ctx.charger_id)
    return {"currentTime": now_iso(ctx.site)}


async def status_notification(ctx: HandlerContext, p: Payload) -> Payload:
    error = p["errorCode"]
    await ctx.site.connector_status(
        ctx.charger_id,
        evse_id=p["connectorId"],
        connector_id=p["connectorId"],
        status=STATUS[p["status"]],
        error_code=None if error == "NoError" else error,
        info=p.get("info") or None,
        vendor_error_code=p.get("vendorErrorCode") or None,
        at=parse_time(p["timestamp"], "timestamp") if "timestamp" in p else None,
    )
    return {}


async def authorize(ctx: HandlerContext, p: Payload) -> Payload:
    return {"idTagInfo": {"status": ctx.site.authorize(p["idTag"]).value}}


async def start_transaction(ctx: HandlerContext, p: Payload) -> Payload:
    connector = p["connectorId"]
    if connector < 1:
        raise OcppError("PropertyConstraintViolation", "connectorId must be 1 or more")
    session, status = await ctx.site.start_session(
        ctx.charger_id,
        evse_id=connector,
        connector_id=connector,
        id_tag=p["idTag"],
        started_at=parse_time(p["timestamp"], "timestamp"),
        version=ctx.version.value,
        meter_start_wh=float(p["meterStart"]),
        reservation_id=p.get("reservationId"),
    )
    return {"transactionId": int(session.transaction_id), "idTagInfo": {"status": status.value}}


async def stop_transaction(ctx: HandlerContext, p: Payload) -> Payload:
    note_quirks(ctx, "StopTransaction", p)
    await ctx.site.stop_session(
        ctx.charger_id,
        transaction_id=str(p["transactionId"]),
        stopped_at=parse_time(p["timestamp"], "timestamp"),
        reason=p.get("reason", "Local"),
        meter_stop_wh=float(p["meterStop"]),
        id_tag=p.get("idTag"),
        readings=readings(p.get("transactionData", [])),
    )
    if "idTag" in p:
        return {"idTagInfo": {"status": ctx.site.authorize(p["idTag"]).value}}
    return {}


def meter_values(ctx: HandlerContext, p: Payload) -> Answer:
    note_quirks(ctx, "MeterValues", p)
    transaction = p.get("transactionId")
    _, stored = ctx.site.record_meter_values(
        ctx.charger_id,
        evse_id=p["connectorId"],
        readings=readings(p["meterValue"]),
        transaction_id=str(transaction) if transaction is not None else None,
    )
    return Answer({}, stored)


HANDLERS: Final[dict[str, Handler]] = {
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize,
    "StartTransaction": start_transaction,
    "StopTransaction": stop_transaction,
    "MeterValues": meter_values,
    "DataTransfer": reports.data_transfer,
    "DiagnosticsStatusNotification": reports.diagnostics_status,
    "FirmwareStatusNotification": reports.firmware_status,
    # the Security Whitepaper (edition 3) messages a charger sends
    "SecurityEventNotification": reports.security_event,
    "SignedFirmwareStatusNotification": reports.firmware_status,
    "LogStatusNotification": reports.log_status,
    "SignCertificate": reports.sign_certificate,
}


# --- commands ------------------------------------------------------------------------

# what only the Security Whitepaper's ExtendedTriggerMessage can ask a 1.6 charger for
EXTENDED_ONLY_TRIGGERS: Final = frozenset({"LogStatusNotification", "SignChargePointCertificate"})


def to_call(command: cmd.Command) -> tuple[str, Payload]:
    if (same := cmd.call_of_both_versions(command)) is not None:
        return same
    if (profile_call := profiles.to_call_v16(command)) is not None:
        return profile_call
    match command:
        case cmd.RemoteStart(id_tag=id_tag, evse_id=evse_id):
            payload: Payload = {"idTag": id_tag}
            if evse_id is not None:
                payload["connectorId"] = evse_id
            return "RemoteStartTransaction", payload
        case cmd.RemoteStop(transaction_id=transaction_id):
            if not transaction_id.lstrip("-").isdigit():
                raise cmd.UnsupportedCommand("an OCPP 1.6 transaction id is a number")
            return "RemoteStopTransaction", {"transactionId": int(transaction_id)}
        case cmd.Reset(hard=hard):
            return "Reset", {"type": "Hard" if hard else "Soft"}
        case cmd.Unlock(evse_id=evse_id):
            return "UnlockConnector", {"connectorId": evse_id}
        case cmd.ChangeAvailability(operative=operative, evse_id=evse_id):
            kind = "Operative" if operative else "Inoperative"
            return "ChangeAvailability", {"connectorId": evse_id, "type": kind}
        case cmd.TriggerMessage(message=message, evse_id=evse_id, extended=extended):
            payload = {"requestedMessage": message}
            if evse_id is not None:
                payload["connectorId"] = evse_id
            if extended or message in EXTENDED_ONLY_TRIGGERS:
                return "ExtendedTriggerMessage", payload
            return "TriggerMessage", payload
        case cmd.GetLog(log_type="DiagnosticsLog") as get:
            payload = {"location": get.location}
            if get.oldest is not None:
                payload["startTime"] = get.oldest.isoformat()
            if get.latest is not None:
                payload["stopTime"] = get.latest.isoformat()
            if get.retries is not None:
                payload["retries"] = get.retries
            if get.retry_interval is not None:
                payload["retryInterval"] = get.retry_interval
            return "GetDiagnostics", payload
        case cmd.GetLog() as get:  # a SecurityLog: only the Security Whitepaper's GetLog
            return cmd.log_call(get)
        case cmd.GetTransactionStatus():
            raise cmd.UnsupportedCommand("GetTransactionStatus is OCPP 2.0.1")
        case cmd.GetConfiguration(keys=keys):
            return "GetConfiguration", {"key": list(keys)} if keys else {}
        case cmd.ChangeConfiguration(key=key, value=value):
            return "ChangeConfiguration", {"key": key, "value": value}
        case cmd.ReserveNow(reservation_id=rid, evse_id=evse_id, id_tag=id_tag, expires_at=exp):
            return "ReserveNow", {
                "connectorId": evse_id,
                "expiryDate": exp.isoformat(),
                "idTag": id_tag,
                "reservationId": rid,
            }
        case cmd.CancelReservation(reservation_id=rid):
            return "CancelReservation", {"reservationId": rid}
        case cmd.SendLocalList(version=version, full=full, entries=entries):
            return "SendLocalList", {
                "listVersion": version,
                "updateType": "Full" if full else "Differential",
                "localAuthorizationList": [_local_entry(e) for e in entries],
            }
        case cmd.GetVariables() | cmd.SetVariables():
            raise cmd.UnsupportedCommand(
                "variables are OCPP 2.0.1; use configuration keys with an OCPP 1.6 charger"
            )
        case cmd.UpdateFirmware() if command.signed:
            payload = firmware.with_request_id(command, signature_required=True)
            return "SignedUpdateFirmware", payload
        case cmd.UpdateFirmware():
            return "UpdateFirmware", firmware.plain_16(command)
    raise cmd.UnsupportedCommand(type(command).__name__)


_TAG_STATUSES: Final = frozenset({"Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"})


def _local_entry(entry: cmd.LocalListEntry) -> Payload:
    """A local list entry; without a status it removes the tag (Differential)."""
    item: Payload = {"idTag": entry.id_tag}
    if entry.status is not None:
        # 1.6 knows no "Unknown": such a tag is not valid
        info: Payload = {"status": entry.status if entry.status in _TAG_STATUSES else "Invalid"}
        if entry.expires_at is not None:
            info["expiryDate"] = entry.expires_at.isoformat()
        item["idTagInfo"] = info
    return item


def outcome(action: str, response: Payload) -> cmd.CommandOutcome:
    if action == "GetConfiguration":
        return cmd.CommandOutcome("Accepted", response)
    if action == "GetLocalListVersion":
        return cmd.CommandOutcome("Accepted", {**response, "list_version": response["listVersion"]})
    if action == "GetDiagnostics":
        # no fileName: the charger has no diagnostics to send, so no upload will come
        name = response.get("fileName")
        return cmd.CommandOutcome("Accepted" if name else "Rejected", {"file_name": name})
    if action == "GetLog":
        return cmd.log_outcome(response)
    return cmd.CommandOutcome(str(response.get("status", "Accepted")), response)
