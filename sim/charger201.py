"""OCPP 2.0.1 for the simulated charging station: the messages it sends and its answers
to the CSMS's calls. The station makes its own transaction ids (uuids); TransactionEvents
carry a per-transaction ``seqNo`` and ``offline: true`` when they happened while the
station was disconnected."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from sim.charger201_variables import DeviceModel, Settings201
from sim.charger_model import (
    Connector,
    ConnectorStatus,
    Reservation,
    StopReason,
    Transaction,
    ocpp_time,
    parse_time,
)
from sim.charger_rpc import Reply
from sim.curve import MeterSample
from sim.offline_queue import QueuedMessage

if TYPE_CHECKING:
    from sim.charger import SimCharger

VENDOR_ID = "evpark"
REPORT_CHUNK = 20

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
_WIRE_STATUS = {
    ConnectorStatus.AVAILABLE: "Available",
    ConnectorStatus.RESERVED: "Reserved",
    ConnectorStatus.UNAVAILABLE: "Unavailable",
    ConnectorStatus.FAULTED: "Faulted",
}
# 1.6-style stop reason -> (triggerReason, stoppedReason)
_ENDED = {
    "Local": ("StopAuthorized", "Local"),
    "Remote": ("RemoteStop", "Remote"),
    "EVDisconnected": ("EVCommunicationLost", "EVDisconnected"),
    "DeAuthorized": ("Deauthorized", "DeAuthorized"),
    "HardReset": ("ResetCommand", "ImmediateReset"),
    "SoftReset": ("ResetCommand", "ImmediateReset"),
    "UnlockCommand": ("UnlockCommand", "Other"),
    "EmergencyStop": ("AbnormalCondition", "EmergencyStop"),
    "PowerLoss": ("AbnormalCondition", "PowerLoss"),
    "Reboot": ("ResetCommand", "Reboot"),
    "Other": ("AbnormalCondition", "Other"),
}
_CHARGING_STATE = {
    ConnectorStatus.CHARGING: "Charging",
    ConnectorStatus.SUSPENDED_EV: "SuspendedEV",
    ConnectorStatus.SUSPENDED_EVSE: "SuspendedEVSE",
}


def sampled_values(
    sample: MeterSample, measurands: tuple[str, ...], context: str, offered_w: float
) -> list[dict[str, Any]]:
    """2.0.1 sampled values (numbers with a unit of measure)."""
    values = {
        "Energy.Active.Import.Register": round(sample.energy_wh, 1),
        "Energy.Active.Import.Interval": 0.0,
        "Power.Active.Import": round(sample.power_w, 1),
        "Power.Offered": round(offered_w, 1),
        "Current.Import": round(sample.current_a, 2),
        "Current.Offered": round(sample.current_a, 2),
        "Voltage": round(sample.voltage_v, 1),
        "SoC": round(sample.soc, 1),
    }
    return [
        {
            "value": values[measurand],
            "context": context,
            "measurand": measurand,
            "location": "EV" if measurand == "SoC" else "Outlet",
            "unitOfMeasure": {"unit": _UNITS[measurand]},
        }
        for measurand in measurands
    ]


def _id_token(tag: str) -> dict[str, Any]:
    return {"idToken": tag[:36], "type": "ISO14443"}


class Charger201:
    subprotocol = "ocpp2.0.1"

    def __init__(self, charger: SimCharger) -> None:
        self.charger = charger
        config = charger.config
        self.model = DeviceModel(
            evses=config.connectors,
            meter_interval=config.meter_interval,
            password=config.password,
            vendor=config.vendor,
            model=config.model,
        )
        self.settings = Settings201(self.model)
        self._event_seq = itertools.count(0)
        self._event_ids = itertools.count(1)
        self.reset_when_idle = False

    # -- outgoing -----------------------------------------------------------------

    def boot_request(self, reason: str) -> dict[str, Any]:
        config = self.charger.config
        return {
            "chargingStation": {
                "model": config.model[:20],
                "vendorName": config.vendor[:50],
                "serialNumber": (config.serial_number or f"SN-{config.charge_point_id}")[:25],
                "firmwareVersion": config.firmware_version[:50],
            },
            "reason": reason,
        }

    def wire_status(self, connector: Connector) -> str:
        return _WIRE_STATUS.get(connector.status, "Occupied")

    def station_requests(self, now: datetime) -> list[tuple[str, dict[str, Any]]]:
        return []

    def status_requests(
        self, connector: Connector, previous: str | None, now: datetime
    ) -> list[tuple[str, dict[str, Any]]]:
        status = self.wire_status(connector)
        self.model.set_value("EVSE", "AvailabilityState", status, evse=connector.evse)
        requests: list[tuple[str, dict[str, Any]]] = [
            (
                "StatusNotification",
                {
                    "timestamp": ocpp_time(now),
                    "connectorStatus": status,
                    "evseId": connector.evse,
                    "connectorId": 1,
                },
            )
        ]
        if status == "Faulted" and previous != "Faulted":
            requests.append(("NotifyEvent", self._problem_event(connector, now, cleared=False)))
        elif previous == "Faulted" and status != "Faulted":
            requests.append(("NotifyEvent", self._problem_event(connector, now, cleared=True)))
        return requests

    def _problem_event(
        self, connector: Connector, now: datetime, *, cleared: bool
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "eventId": next(self._event_ids),
            "timestamp": ocpp_time(now),
            "trigger": "Delta",
            "actualValue": "false" if cleared else "true",
            "cleared": cleared,
            "component": {"name": "Connector", "evse": {"id": connector.evse, "connectorId": 1}},
            "variable": {"name": "Problem"},
            "eventNotificationType": "HardWiredNotification",
        }
        if connector.fault is not None:
            event["techCode"] = connector.fault[:50]
        return {
            "generatedAt": ocpp_time(now),
            "seqNo": next(self._event_seq),
            "tbc": False,
            "eventData": [event],
        }

    def authorize_request(self, id_tag: str) -> dict[str, Any]:
        return {"idToken": _id_token(id_tag)}

    def authorize_status(self, response: dict[str, Any]) -> str:
        return str(response["idTokenInfo"]["status"])

    def new_transaction_key(self) -> str:
        return str(uuid.UUID(int=self.charger.rng.getrandbits(128), version=4))

    def _event(
        self,
        event_type: str,
        tx: Transaction,
        trigger: str,
        now: datetime,
        offline: bool,
        meter_value: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        info: dict[str, Any] = {"transactionId": tx.key, "chargingState": tx.charging_state}
        payload: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": ocpp_time(now),
            "triggerReason": trigger,
            "seqNo": tx.next_seq_no(),
            "transactionInfo": info,
            "evse": {"id": tx.evse, "connectorId": 1},
        }
        if offline:
            payload["offline"] = True
        if meter_value:
            payload["meterValue"] = meter_value
        return payload

    def started(
        self, tx: Transaction, connector: Connector, trigger: str, now: datetime, offline: bool
    ) -> list[QueuedMessage]:
        tx.charging_state = "Charging"
        begin = tx.last_sample or connector.meter.sample()
        payload = self._event(
            "Started",
            tx,
            trigger,
            now,
            offline,
            [
                {
                    "timestamp": ocpp_time(now),
                    "sampledValue": sampled_values(
                        begin, ("Energy.Active.Import.Register",), "Transaction.Begin", 0.0
                    ),
                }
            ],
        )
        payload["idToken"] = _id_token(tx.id_tag)
        if tx.remote_start_id is not None:
            payload["transactionInfo"]["remoteStartId"] = tx.remote_start_id
        if tx.reservation_id is not None:
            payload["reservationId"] = tx.reservation_id
        return [QueuedMessage("TransactionEvent", payload, tx.key, generated_offline=offline)]

    def metered(
        self,
        tx: Transaction,
        connector: Connector,
        sample: MeterSample,
        now: datetime,
        offline: bool,
    ) -> list[QueuedMessage]:
        state = _CHARGING_STATE.get(connector.status, "Charging")
        trigger = "MeterValuePeriodic"
        if state != tx.charging_state:
            tx.charging_state = state
            trigger = "ChargingStateChanged"
        meter_value = [
            {
                "timestamp": ocpp_time(now),
                "sampledValue": sampled_values(
                    sample,
                    self.settings.measurands(),
                    "Sample.Periodic",
                    connector.meter.offered_w(),
                ),
            }
        ]
        payload = self._event("Updated", tx, trigger, now, offline, meter_value)
        return [
            QueuedMessage(
                "TransactionEvent",
                payload,
                tx.key,
                droppable=trigger == "MeterValuePeriodic",
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
        trigger, stopped = _ENDED[reason]
        tx.charging_state = "EVConnected" if connector.plugged else "Idle"
        measurands = self.settings.ended_measurands() or ("Energy.Active.Import.Register",)
        meter_value = [
            {
                "timestamp": ocpp_time(now),
                "sampledValue": sampled_values(sample, measurands, "Transaction.End", 0.0),
            }
        ]
        payload = self._event("Ended", tx, trigger, now, offline, meter_value)
        payload["transactionInfo"]["stoppedReason"] = stopped
        if reason == "Local":
            payload["idToken"] = _id_token(tx.id_tag)
        return [QueuedMessage("TransactionEvent", payload, tx.key, generated_offline=offline)]

    def prepare(self, message: QueuedMessage) -> dict[str, Any] | None:
        return message.payload

    def delivered(self, message: QueuedMessage, response: dict[str, Any]) -> None:
        info = response.get("idTokenInfo")
        if message.payload["eventType"] != "Started" or info is None:
            return
        status = info["status"]
        self.charger.auth.cache[message.payload["idToken"]["idToken"]] = status
        if status != "Accepted" and self.settings.stop_on_invalid_id():
            evse = int(message.payload["evse"]["id"])
            self.charger.schedule(lambda: self._stop(evse, message.tx_key, "DeAuthorized"))

    async def _stop(self, evse: int, key: str, reason: StopReason) -> None:
        tx = self.charger.connectors[evse].transaction
        if tx is not None and tx.key == key:
            await self.charger.stop(evse, reason)
        self._maybe_reset()

    def _maybe_reset(self) -> None:
        if self.reset_when_idle and all(
            c.transaction is None for c in self.charger.connectors.values()
        ):
            self.reset_when_idle = False
            self.charger.schedule(lambda: self.charger.reboot("SoftReset", "RemoteReset"))

    def _find_tx(self, transaction_id: str) -> Transaction | None:
        for connector in self.charger.connectors.values():
            if connector.transaction is not None and connector.transaction.key == transaction_id:
                return connector.transaction
        return None

    # -- incoming -----------------------------------------------------------------

    async def handle(self, action: str, payload: dict[str, Any]) -> Reply:
        from sim.charger_rpc import Rejected

        handler = getattr(self, f"on_{action}", None)
        if handler is None:
            raise Rejected("NotSupported", f"{action} is not supported by this station")
        reply: Reply = await handler(payload)
        return reply

    def _known(self, evse: int) -> bool:
        return evse in self.charger.connectors

    async def on_RequestStartTransaction(self, payload: dict[str, Any]) -> Reply:
        charger = self.charger
        tag = str(payload["idToken"]["idToken"])
        evse = payload.get("evseId") or charger.free_connector(tag)
        if not charger.online or evse is None or not self._known(evse):
            return Reply({"status": "Rejected"})
        connector = charger.connectors[evse]
        if (
            connector.transaction is not None
            or not connector.operative
            or connector.fault is not None
            or (connector.reservation is not None and connector.reservation.id_tag != tag)
        ):
            return Reply({"status": "Rejected"})
        profile = payload.get("chargingProfile")
        if profile is not None:
            self._apply_profile(evse, profile)
        remote_start_id = int(payload["remoteStartId"])
        return Reply(
            {"status": "Accepted"},
            then=lambda: charger.remote_start(evse, tag, remote_start_id),
        )

    async def on_RequestStopTransaction(self, payload: dict[str, Any]) -> Reply:
        tx = self._find_tx(str(payload["transactionId"]))
        if tx is None:
            return Reply({"status": "Rejected"})
        return Reply({"status": "Accepted"}, then=lambda: self._stop(tx.evse, tx.key, "Remote"))

    async def on_GetTransactionStatus(self, payload: dict[str, Any]) -> Reply:
        transaction_id = payload.get("transactionId")
        queued = [m for m in self.charger.queue.items() if transaction_id in (None, m.tx_key)]
        answer: dict[str, Any] = {"messagesInQueue": bool(queued)}
        if transaction_id is not None:
            answer["ongoingIndicator"] = self._find_tx(str(transaction_id)) is not None
        return Reply(answer)

    async def on_Reset(self, payload: dict[str, Any]) -> Reply:
        charger = self.charger
        evse = payload.get("evseId")
        if evse is not None:
            if not self._known(evse):
                return Reply({"status": "Rejected"})
            tx = charger.connectors[evse].transaction
            if tx is None:
                return Reply({"status": "Accepted"})
            if payload["type"] == "OnIdle":
                return Reply({"status": "Scheduled"})
            return Reply({"status": "Accepted"}, then=lambda: self._stop(evse, tx.key, "HardReset"))
        busy = any(c.transaction is not None for c in charger.connectors.values())
        if payload["type"] == "OnIdle" and busy:
            self.reset_when_idle = True
            return Reply({"status": "Scheduled"})
        return Reply(
            {"status": "Accepted"}, then=lambda: charger.reboot("HardReset", "RemoteReset")
        )

    async def on_UnlockConnector(self, payload: dict[str, Any]) -> Reply:
        evse = int(payload["evseId"])
        if not self._known(evse) or payload["connectorId"] != 1:
            return Reply({"status": "UnknownConnector"})
        if self.charger.connectors[evse].transaction is not None:
            return Reply({"status": "OngoingAuthorizedTransaction"})
        return Reply({"status": "Unlocked"})

    async def on_ChangeAvailability(self, payload: dict[str, Any]) -> Reply:
        evse = payload.get("evse", {}).get("id")
        if evse is not None and evse != 0 and not self._known(evse):
            return Reply({"status": "Rejected"})
        operative = payload["operationalStatus"] == "Operative"
        busy = any(
            c.transaction is not None
            for n, c in self.charger.connectors.items()
            if evse in (None, 0, n)
        )
        status = "Scheduled" if busy and not operative else "Accepted"
        return Reply({"status": status}, then=lambda: self._set_operative(evse or None, operative))

    async def _set_operative(self, evse: int | None, operative: bool) -> None:
        await self.charger.set_operative(evse, operative)
        if evse is None:
            self.model.set_value(
                "ChargingStation", "AvailabilityState", "Available" if operative else "Unavailable"
            )

    async def on_TriggerMessage(self, payload: dict[str, Any]) -> Reply:
        what = payload["requestedMessage"]
        evse = payload.get("evse", {}).get("id")
        if evse is not None and not self._known(evse):
            return Reply({"status": "Rejected"})
        supported = {
            "BootNotification",
            "Heartbeat",
            "StatusNotification",
            "MeterValues",
            "TransactionEvent",
            "FirmwareStatusNotification",
            "LogStatusNotification",
        }
        if what not in supported:
            return Reply({"status": "NotImplemented"})
        charger = self.charger
        targets = [evse] if evse else list(charger.connectors)

        async def send() -> None:
            now = charger.clock.now()
            if what == "BootNotification":
                if not charger.online:
                    charger.trigger_boot()
                    return
                await charger.send_or_log("BootNotification", self.boot_request("Triggered"))
            elif what == "Heartbeat":
                await charger.send_or_log("Heartbeat", {})
            elif what == "FirmwareStatusNotification":
                await charger.send_or_log("FirmwareStatusNotification", {"status": "Idle"})
            elif what == "LogStatusNotification":
                await charger.send_or_log("LogStatusNotification", {"status": "Idle"})
            elif what == "StatusNotification":
                for n in targets:
                    connector = charger.connectors[n]
                    request = self.status_requests(connector, self.wire_status(connector), now)[0]
                    await charger.send_or_log(*request)
            elif what == "MeterValues":
                for n in targets:
                    meter = charger.connectors[n].meter
                    values = sampled_values(
                        meter.sample(), self.settings.measurands(), "Trigger", meter.offered_w()
                    )
                    await charger.send_or_log(
                        "MeterValues",
                        {
                            "evseId": n,
                            "meterValue": [{"timestamp": ocpp_time(now), "sampledValue": values}],
                        },
                    )
            else:
                for n in targets:
                    connector = charger.connectors[n]
                    tx = connector.transaction
                    if tx is not None:
                        sample = connector.meter.sample()
                        event = self._event(
                            "Updated",
                            tx,
                            "Trigger",
                            now,
                            False,
                            [
                                {
                                    "timestamp": ocpp_time(now),
                                    "sampledValue": sampled_values(
                                        sample,
                                        self.settings.measurands(),
                                        "Trigger",
                                        connector.meter.offered_w(),
                                    ),
                                }
                            ],
                        )
                        await charger.enqueue([QueuedMessage("TransactionEvent", event, tx.key)])

        return Reply({"status": "Accepted"}, then=send)

    async def on_GetVariables(self, payload: dict[str, Any]) -> Reply:
        results = [self.model.get_result(item) for item in payload["getVariableData"]]
        return Reply({"getVariableResult": results})

    async def on_SetVariables(self, payload: dict[str, Any]) -> Reply:
        results = []
        for item in payload["setVariableData"]:
            result, variable = self.model.set_result(item)
            results.append(result)
            if variable is not None and (variable.component, variable.name) == (
                "SecurityCtrlr",
                "BasicAuthPassword",
            ):
                self.charger.password = variable.value
        self.charger.log.info("sim.charger.variables_set", count=len(results))
        return Reply({"setVariableResult": results})

    async def on_GetBaseReport(self, payload: dict[str, Any]) -> Reply:
        request_id = int(payload["requestId"])
        base = payload["reportBase"]
        rows = list(self.model)
        if base == "ConfigurationInventory":
            rows = [v for v in rows if v.mutability != "ReadOnly"]
        elif base == "SummaryInventory":
            rows = [
                v
                for v in rows
                if v.name in {"AvailabilityState", "Available", "Model", "VendorName"}
            ]
        charger = self.charger

        async def report() -> None:
            chunks = [rows[i : i + REPORT_CHUNK] for i in range(0, len(rows), REPORT_CHUNK)]
            for seq_no, chunk in enumerate(chunks):
                request: dict[str, Any] = {
                    "requestId": request_id,
                    "generatedAt": ocpp_time(charger.clock.now()),
                    "seqNo": seq_no,
                    "tbc": seq_no < len(chunks) - 1,
                    "reportData": [variable.report() for variable in chunk],
                }
                await charger.call("NotifyReport", request)

        return Reply({"status": "Accepted"}, then=report)

    async def on_ReserveNow(self, payload: dict[str, Any]) -> Reply:
        charger = self.charger
        tag = str(payload["idToken"]["idToken"])
        evse = payload.get("evseId") or charger.free_connector(tag)
        if evse is None:
            return Reply({"status": "Occupied"})
        if not self._known(evse):
            return Reply({"status": "Rejected"})
        connector = charger.connectors[evse]
        status = {
            ConnectorStatus.AVAILABLE: "Accepted",
            ConnectorStatus.RESERVED: "Accepted",
            ConnectorStatus.FAULTED: "Faulted",
            ConnectorStatus.UNAVAILABLE: "Unavailable",
        }.get(connector.status, "Occupied")
        existing = connector.reservation
        if existing is not None and existing.reservation_id != payload["id"]:
            status = "Occupied"
        if status != "Accepted":
            return Reply({"status": status})
        connector.reservation = Reservation(
            int(payload["id"]), tag, parse_time(payload["expiryDateTime"])
        )
        return Reply({"status": "Accepted"}, then=partial(charger.publish_change, connector))

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
        version = int(payload["versionNumber"])
        entries = payload.get("localAuthorizationList", [])
        if payload["updateType"] == "Differential" and version <= auth.local_version:
            return Reply({"status": "VersionMismatch"})
        if payload["updateType"] == "Full":
            auth.local.clear()
        for entry in entries:
            tag = entry["idToken"]["idToken"]
            info = entry.get("idTokenInfo")
            if info is None:
                auth.local.pop(tag, None)
            else:
                auth.local[tag] = info["status"]
        auth.local_version = version
        self.model.set_value("LocalAuthListCtrlr", "Entries", str(len(auth.local)))
        return Reply({"status": "Accepted"})

    async def on_GetLocalListVersion(self, payload: dict[str, Any]) -> Reply:
        return Reply({"versionNumber": self.charger.auth.local_version})

    async def on_ClearCache(self, payload: dict[str, Any]) -> Reply:
        self.charger.auth.cache.clear()
        return Reply({"status": "Accepted"})

    async def on_DataTransfer(self, payload: dict[str, Any]) -> Reply:
        if payload["vendorId"] != VENDOR_ID:
            return Reply({"status": "UnknownVendorId"})
        if payload.get("messageId") not in (None, "echo"):
            return Reply({"status": "UnknownMessageId"})
        return Reply(
            {"status": "Accepted", "data": payload.get("data")}
            if "data" in payload
            else {"status": "Accepted"}
        )

    async def on_SetChargingProfile(self, payload: dict[str, Any]) -> Reply:
        evse = int(payload["evseId"])
        if evse != 0 and not self._known(evse):
            return Reply({"status": "Rejected"})
        self._apply_profile(evse, payload["chargingProfile"])
        return Reply({"status": "Accepted"})

    async def on_ClearChargingProfile(self, payload: dict[str, Any]) -> Reply:
        for connector in self.charger.connectors.values():
            connector.meter.limit_w = None
        return Reply({"status": "Accepted"})

    def _apply_profile(self, evse: int, profile: dict[str, Any]) -> None:
        schedules = profile.get("chargingSchedule") or []
        if not schedules or not schedules[0].get("chargingSchedulePeriod"):
            return
        schedule = schedules[0]
        limit = float(schedule["chargingSchedulePeriod"][0]["limit"])
        for n, connector in self.charger.connectors.items():
            if evse in (0, n):
                meter = connector.meter
                meter.limit_w = (
                    meter.watts_for_amps(limit) if schedule["chargingRateUnit"] == "A" else limit
                )
