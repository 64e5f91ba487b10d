"""OCPP 1.6J for the simulated charger: the messages it sends and its answers to the
central system's calls. Transaction ids are the central system's: the charger starts a
transaction under a local key and, when the StartTransaction answer arrives (maybe after
a reconnection), rewrites the queued MeterValues/StopTransaction with the real id."""

from __future__ import annotations

import itertools
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from sim.charger16_config import ConfigurationKeys, Settings16
from sim.charger_model import (
    Connector,
    ConnectorStatus,
    Reservation,
    StopReason,
    Transaction,
    ocpp_time,
    parse_time,
)
from sim.charger_rpc import Rejected, Reply
from sim.curve import MeterSample
from sim.offline_queue import QueuedMessage

if TYPE_CHECKING:
    from sim.charger import SimCharger

_UNITS = {
    "Energy.Active.Import.Register": "Wh",
    "Energy.Active.Import.Interval": "Wh",
    "Power.Active.Import": "W",
    "Power.Offered": "W",
    "Current.Import": "A",
    "Current.Offered": "A",
    "Voltage": "V",
    "SoC": "Percent",
}
VENDOR_ID = "evpark"


def sampled_values(
    sample: MeterSample, measurands: tuple[str, ...], context: str, offered_w: float
) -> list[dict[str, Any]]:
    """1.6 sampled values (strings) for ``measurands`` in the order configured."""
    values = {
        "Energy.Active.Import.Register": f"{sample.energy_wh:.0f}",
        "Energy.Active.Import.Interval": "0",
        "Power.Active.Import": f"{sample.power_w:.0f}",
        "Power.Offered": f"{offered_w:.0f}",
        "Current.Import": f"{sample.current_a:.1f}",
        "Current.Offered": f"{sample.current_a:.1f}",
        "Voltage": f"{sample.voltage_v:.1f}",
        "SoC": f"{sample.soc:.0f}",
    }
    out: list[dict[str, Any]] = []
    for measurand in measurands:
        value: dict[str, Any] = {
            "value": values[measurand],
            "context": context,
            "format": "Raw",
            "measurand": measurand,
            "unit": _UNITS[measurand],
        }
        value["location"] = "EV" if measurand == "SoC" else "Outlet"
        out.append(value)
    return out


class Charger16:
    subprotocol = "ocpp1.6"

    def __init__(self, charger: SimCharger) -> None:
        self.charger = charger
        config = charger.config
        self.keys = ConfigurationKeys(
            connectors=config.connectors,
            meter_interval=config.meter_interval,
            password=config.password,
        )
        self.settings = Settings16(self.keys)
        self._local_keys = itertools.count(1)
        # local transaction key -> the central system's transactionId
        self.tx_ids: dict[str, int] = {}
        self.local_list_version = 0

    # -- outgoing -----------------------------------------------------------------

    def boot_request(self, reason: str) -> dict[str, Any]:
        config = self.charger.config
        serial = (config.serial_number or f"SN-{config.charge_point_id}")[:25]
        return {
            "chargePointVendor": config.vendor[:20],
            "chargePointModel": config.model[:20],
            "chargePointSerialNumber": serial,
            "chargeBoxSerialNumber": serial,
            "firmwareVersion": config.firmware_version[:50],
            "meterType": "SimMeter"[:25],
            "meterSerialNumber": f"M-{serial}"[:25],
        }

    def wire_status(self, connector: Connector) -> str:
        return connector.status.value

    def station_requests(self, now: datetime) -> list[tuple[str, dict[str, Any]]]:
        operative = any(c.operative for c in self.charger.connectors.values())
        status = "Available" if operative else "Unavailable"
        return [
            (
                "StatusNotification",
                {
                    "connectorId": 0,
                    "errorCode": "NoError",
                    "status": status,
                    "timestamp": ocpp_time(now),
                },
            )
        ]

    def status_requests(
        self, connector: Connector, previous: str | None, now: datetime
    ) -> list[tuple[str, dict[str, Any]]]:
        payload: dict[str, Any] = {
            "connectorId": connector.evse,
            "errorCode": "NoError",
            "status": connector.status.value,
            "timestamp": ocpp_time(now),
        }
        if connector.fault is not None:
            payload["errorCode"] = connector.fault
            payload["info"] = "simulated fault"
        return [("StatusNotification", payload)]

    def authorize_request(self, id_tag: str) -> dict[str, Any]:
        return {"idTag": id_tag[:20]}

    def authorize_status(self, response: dict[str, Any]) -> str:
        return str(response["idTagInfo"]["status"])

    def new_transaction_key(self) -> str:
        return f"local-{next(self._local_keys)}"

    def started(
        self, tx: Transaction, connector: Connector, trigger: str, now: datetime, offline: bool
    ) -> list[QueuedMessage]:
        payload: dict[str, Any] = {
            "connectorId": tx.evse,
            "idTag": tx.id_tag[:20],
            "meterStart": round(tx.meter_start_wh),
            "timestamp": ocpp_time(now),
        }
        if tx.reservation_id is not None:
            payload["reservationId"] = tx.reservation_id
        return [QueuedMessage("StartTransaction", payload, tx.key, generated_offline=offline)]

    def metered(
        self,
        tx: Transaction,
        connector: Connector,
        sample: MeterSample,
        now: datetime,
        offline: bool,
    ) -> list[QueuedMessage]:
        return [
            QueuedMessage(
                "MeterValues",
                {
                    "connectorId": tx.evse,
                    "transactionId": 0,  # rewritten at send time
                    "meterValue": [
                        {
                            "timestamp": ocpp_time(now),
                            "sampledValue": sampled_values(
                                sample,
                                self.settings.measurands(),
                                "Sample.Periodic",
                                connector.meter.offered_w(),
                            ),
                        }
                    ],
                },
                tx.key,
                droppable=True,
                generated_offline=offline,
            )
        ]

    def ended(
        self,
        tx: Transaction,
        connector: Connector,
        sample: MeterSample,
        reason: StopReason,
        now: datetime,
        offline: bool,
    ) -> list[QueuedMessage]:
        stop_measurands = tuple(
            m.strip() for m in self.keys.get("StopTxnSampledData").split(",") if m.strip()
        ) or ("Energy.Active.Import.Register",)
        begin = {
            "timestamp": ocpp_time(tx.started_at),
            "sampledValue": [
                {
                    "value": f"{tx.meter_start_wh:.0f}",
                    "context": "Transaction.Begin",
                    "measurand": "Energy.Active.Import.Register",
                    "unit": "Wh",
                    "location": "Outlet",
                }
            ],
        }
        end = {
            "timestamp": ocpp_time(now),
            "sampledValue": sampled_values(sample, stop_measurands, "Transaction.End", 0.0),
        }
        payload: dict[str, Any] = {
            "idTag": tx.id_tag[:20],
            "meterStop": round(sample.energy_wh),
            "timestamp": ocpp_time(now),
            "transactionId": 0,  # rewritten at send time
            "reason": reason,
            "transactionData": [begin, end],
        }
        return [QueuedMessage("StopTransaction", payload, tx.key, generated_offline=offline)]

    def prepare(self, message: QueuedMessage) -> dict[str, Any] | None:
        if message.action == "StartTransaction":
            return message.payload
        remote_id = self.tx_ids.get(message.tx_key)
        if remote_id is None:
            # The start was given up on: the central system cannot place this message.
            return None
        return {**message.payload, "transactionId": remote_id}

    def delivered(self, message: QueuedMessage, response: dict[str, Any]) -> None:
        if message.action != "StartTransaction":
            return
        remote_id = int(response["transactionId"])
        self.tx_ids[message.tx_key] = remote_id
        status = response["idTagInfo"]["status"]
        charger = self.charger
        charger.auth.cache[message.payload["idTag"]] = status
        evse = int(message.payload["connectorId"])
        connector = charger.connectors.get(evse)
        tx = connector.transaction if connector is not None else None
        if tx is not None and tx.key == message.tx_key:
            tx.remote_id = remote_id
            if status != "Accepted" and self.settings.stop_on_invalid_id():
                charger.log.info("sim.charger.tx_deauthorized", evse=evse, status=status)
                charger.schedule(lambda: self._stop(evse, tx.key, "DeAuthorized"))
        charger.log.info(
            "sim.charger.tx_confirmed", tx=message.tx_key, transaction_id=remote_id, status=status
        )

    async def _stop(self, evse: int, key: str, reason: StopReason) -> None:
        tx = self.charger.connectors[evse].transaction
        if tx is not None and tx.key == key:
            await self.charger.stop(evse, reason)

    def transaction_by_remote_id(self, remote_id: int) -> Transaction | None:
        for connector in self.charger.connectors.values():
            tx = connector.transaction
            if tx is not None and self.tx_ids.get(tx.key) == remote_id:
                return tx
        return None

    # -- incoming -----------------------------------------------------------------

    async def handle(self, action: str, payload: dict[str, Any]) -> Reply:
        handler = getattr(self, f"on_{action}", None)
        if handler is None:
            raise Rejected("NotSupported", f"{action} is not supported by this charger")
        reply: Reply = await handler(payload)
        return reply

    def _known(self, evse: int) -> bool:
        return evse in self.charger.connectors

    async def on_RemoteStartTransaction(self, payload: dict[str, Any]) -> Reply:
        charger = self.charger
        id_tag = str(payload["idTag"])
        evse = payload.get("connectorId") or charger.free_connector(id_tag)
        if not charger.online or evse is None or not self._known(evse):
            return Reply({"status": "Rejected"})
        connector = charger.connectors[evse]
        if (
            connector.transaction is not None
            or not connector.operative
            or connector.fault is not None
            or (connector.reservation is not None and connector.reservation.id_tag != id_tag)
        ):
            return Reply({"status": "Rejected"})
        profile = payload.get("chargingProfile")
        if profile is not None:
            self._apply_profile(evse, profile)
        return Reply({"status": "Accepted"}, then=lambda: charger.remote_start(evse, id_tag, None))

    async def on_RemoteStopTransaction(self, payload: dict[str, Any]) -> Reply:
        tx = self.transaction_by_remote_id(int(payload["transactionId"]))
        if tx is None:
            return Reply({"status": "Rejected"})
        return Reply({"status": "Accepted"}, then=lambda: self._stop(tx.evse, tx.key, "Remote"))

    async def on_Reset(self, payload: dict[str, Any]) -> Reply:
        hard = payload["type"] == "Hard"
        reason: StopReason = "HardReset" if hard else "SoftReset"
        return Reply(
            {"status": "Accepted"}, then=lambda: self.charger.reboot(reason, "RemoteReset")
        )

    async def on_UnlockConnector(self, payload: dict[str, Any]) -> Reply:
        evse = int(payload["connectorId"])
        if not self._known(evse):
            return Reply({"status": "NotSupported"})
        tx = self.charger.connectors[evse].transaction
        if tx is None:
            return Reply({"status": "Unlocked"})
        # The session ends (reason UnlockCommand) right after the answer.
        return Reply({"status": "Unlocked"}, then=lambda: self._stop(evse, tx.key, "UnlockCommand"))

    async def on_ChangeAvailability(self, payload: dict[str, Any]) -> Reply:
        evse = int(payload["connectorId"])
        if evse != 0 and not self._known(evse):
            return Reply({"status": "Rejected"})
        operative = payload["type"] == "Operative"
        busy = any(
            c.transaction is not None for n, c in self.charger.connectors.items() if evse in (0, n)
        )
        status = "Scheduled" if busy and not operative else "Accepted"

        async def apply() -> None:
            await self.charger.set_operative(evse or None, operative)
            if evse == 0:
                for action, request in self.station_requests(self.charger.clock.now()):
                    await self.charger.send_or_log(action, request)

        return Reply({"status": status}, then=apply)

    async def on_TriggerMessage(self, payload: dict[str, Any]) -> Reply:
        what = payload["requestedMessage"]
        evse = payload.get("connectorId")
        if evse is not None and evse != 0 and not self._known(evse):
            return Reply({"status": "Rejected"})
        charger = self.charger
        now = charger.clock.now

        async def send() -> None:
            if what == "BootNotification":
                if not charger.online:
                    charger.trigger_boot()
                    return
                await charger.send_or_log("BootNotification", self.boot_request("Triggered"))
            elif what == "Heartbeat":
                await charger.send_or_log("Heartbeat", {})
            elif what == "StatusNotification":
                targets = [evse] if evse else list(charger.connectors)
                if not evse:
                    for action, request in self.station_requests(now()):
                        await charger.send_or_log(action, request)
                for n in targets:
                    for action, request in self.status_requests(charger.connectors[n], None, now()):
                        await charger.send_or_log(action, request)
            elif what == "MeterValues":
                for n in [evse] if evse else list(charger.connectors):
                    await charger.send_or_log("MeterValues", self._trigger_meter(n, now()))
            elif what == "DiagnosticsStatusNotification":
                await charger.send_or_log("DiagnosticsStatusNotification", {"status": "Idle"})
            elif what == "FirmwareStatusNotification":
                await charger.send_or_log("FirmwareStatusNotification", {"status": "Idle"})

        return Reply({"status": "Accepted"}, then=send)

    def _trigger_meter(self, evse: int, now: datetime) -> dict[str, Any]:
        connector = self.charger.connectors[evse]
        payload: dict[str, Any] = {
            "connectorId": evse,
            "meterValue": [
                {
                    "timestamp": ocpp_time(now),
                    "sampledValue": sampled_values(
                        connector.meter.sample(),
                        self.settings.measurands(),
                        "Trigger",
                        connector.meter.offered_w(),
                    ),
                }
            ],
        }
        tx = connector.transaction
        if tx is not None and tx.key in self.tx_ids:
            payload["transactionId"] = self.tx_ids[tx.key]
        return payload

    async def on_GetConfiguration(self, payload: dict[str, Any]) -> Reply:
        return Reply(self.keys.report(payload.get("key")))

    async def on_ChangeConfiguration(self, payload: dict[str, Any]) -> Reply:
        name, value = str(payload["key"]), str(payload["value"])
        status = self.keys.change(name, value)
        if status == "Accepted" and name == "AuthorizationKey":
            # The new password is used from the next connection on.
            self.charger.password = value
        self.charger.log.info("sim.charger.configuration_changed", key=name, status=status)
        return Reply({"status": status})

    async def on_ReserveNow(self, payload: dict[str, Any]) -> Reply:
        evse = int(payload["connectorId"])
        if evse == 0 or not self._known(evse):
            return Reply({"status": "Rejected"})
        connector = self.charger.connectors[evse]
        status = {
            ConnectorStatus.AVAILABLE: "Accepted",
            ConnectorStatus.RESERVED: "Accepted",
            ConnectorStatus.FAULTED: "Faulted",
            ConnectorStatus.UNAVAILABLE: "Unavailable",
        }.get(connector.status, "Occupied")
        existing = connector.reservation
        if existing is not None and existing.reservation_id != payload["reservationId"]:
            status = "Occupied"
        if status != "Accepted":
            return Reply({"status": status})
        connector.reservation = Reservation(
            int(payload["reservationId"]), str(payload["idTag"]), parse_time(payload["expiryDate"])
        )
        return Reply({"status": "Accepted"}, then=partial(self.charger.publish_change, connector))

    async def on_CancelReservation(self, payload: dict[str, Any]) -> Reply:
        for connector in self.charger.connectors.values():
            reservation = connector.reservation
            if reservation is not None and reservation.reservation_id == payload["reservationId"]:
                connector.reservation = None
                return Reply(
                    {"status": "Accepted"}, then=partial(self.charger.publish_change, connector)
                )
        return Reply({"status": "Rejected"})

    async def on_SendLocalList(self, payload: dict[str, Any]) -> Reply:
        auth = self.charger.auth
        version = int(payload["listVersion"])
        entries = payload.get("localAuthorizationList", [])
        if payload["updateType"] == "Differential" and version <= auth.local_version:
            return Reply({"status": "VersionMismatch"})
        if len(entries) > self.keys.get_int("SendLocalListMaxLength"):
            return Reply({"status": "Failed"})
        if payload["updateType"] == "Full":
            auth.local.clear()
        for entry in entries:
            info = entry.get("idTagInfo")
            if info is None:
                auth.local.pop(entry["idTag"], None)
            else:
                auth.local[entry["idTag"]] = info["status"]
        auth.local_version = version
        return Reply({"status": "Accepted"})

    async def on_GetLocalListVersion(self, payload: dict[str, Any]) -> Reply:
        return Reply({"listVersion": self.charger.auth.local_version})

    async def on_ClearCache(self, payload: dict[str, Any]) -> Reply:
        self.charger.auth.cache.clear()
        return Reply({"status": "Accepted"})

    async def on_DataTransfer(self, payload: dict[str, Any]) -> Reply:
        if payload["vendorId"] != VENDOR_ID:
            return Reply({"status": "UnknownVendorId"})
        if payload.get("messageId") not in (None, "echo"):
            return Reply({"status": "UnknownMessageId"})
        return Reply({"status": "Accepted", "data": str(payload.get("data", ""))})

    async def on_GetDiagnostics(self, payload: dict[str, Any]) -> Reply:
        file_name = f"diagnostics-{self.charger.id}.log"[:255]
        charger = self.charger

        async def upload() -> None:
            for status in ("Uploading", "Uploaded"):
                await charger.send_or_log("DiagnosticsStatusNotification", {"status": status})

        return Reply({"fileName": file_name}, then=upload)

    async def on_UpdateFirmware(self, payload: dict[str, Any]) -> Reply:
        charger = self.charger

        async def update() -> None:
            for status in ("Downloading", "Downloaded", "Installing", "Installed"):
                await charger.send_or_log("FirmwareStatusNotification", {"status": status})

        return Reply({}, then=update)

    async def on_SetChargingProfile(self, payload: dict[str, Any]) -> Reply:
        evse = int(payload["connectorId"])
        if evse != 0 and not self._known(evse):
            return Reply({"status": "Rejected"})
        self._apply_profile(evse, payload["csChargingProfiles"])
        return Reply({"status": "Accepted"})

    async def on_ClearChargingProfile(self, payload: dict[str, Any]) -> Reply:
        for connector in self.charger.connectors.values():
            connector.meter.limit_w = None
        return Reply({"status": "Accepted"})

    def _apply_profile(self, evse: int, profile: dict[str, Any]) -> None:
        """Honour the first period's limit (A or W) of a profile: enough for load
        balancing to show in the meter values."""
        schedule = profile["chargingSchedule"]
        periods = schedule.get("chargingSchedulePeriod") or []
        if not periods:
            return
        limit = float(periods[0]["limit"])
        for n, connector in self.charger.connectors.items():
            if evse in (0, n):
                meter = connector.meter
                watts = (
                    meter.watts_for_amps(limit) if schedule["chargingRateUnit"] == "A" else limit
                )
                meter.limit_w = watts
