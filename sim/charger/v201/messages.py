"""OCPP 2.0.1 messages of the simulated charging station: what it sends, built for the
core.

The station makes its own transaction ids (uuids); TransactionEvents carry a
per-transaction ``seqNo`` and ``offline: true`` when they happened while the station was
disconnected. The answers to the CSMS's calls are in :mod:`sim.charger.v201.commands`.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from common.timestamps import format_timestamp
from sim.charger.curve import MeterSample
from sim.charger.model import MEASURAND_UNITS, Connector, ConnectorStatus, StopReason, Transaction
from sim.charger.offline_queue import QueuedMessage
from sim.charger.protocol import ProtocolBase, Request
from sim.charger.v201.settings import DeviceModel, Settings201

if TYPE_CHECKING:
    from sim.charger.core import SimCharger

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
            "unitOfMeasure": {"unit": MEASURAND_UNITS[measurand]},
        }
        for measurand in measurands
    ]


def meter_value(
    now: datetime, sample: MeterSample, measurands: tuple[str, ...], context: str, offered_w: float
) -> list[dict[str, Any]]:
    """A message's ``meterValue``: one sample at ``now``."""
    return [
        {
            "timestamp": format_timestamp(now),
            "sampledValue": sampled_values(sample, measurands, context, offered_w),
        }
    ]


def id_token(tag: str) -> dict[str, Any]:
    return {"idToken": tag[:36], "type": "ISO14443"}


class Messages201(ProtocolBase):
    """What a 2.0.1 station sends, built for the core."""

    def __init__(self, charger: SimCharger) -> None:
        super().__init__(charger)
        config = charger.config
        self.model = DeviceModel(
            evses=config.connectors,
            meter_interval=config.meter_interval,
            password=config.password,
            vendor=config.vendor,
            model=config.model,
        )
        if config.tx_start_at_plug_in:
            self.model.set_value("TxCtrlr", "TxStartPoint", "EVConnected")
        self.settings = Settings201(self.model)
        self._event_seq = itertools.count(0)
        self._event_ids = itertools.count(1)
        # A Reset(OnIdle) came while charging: reboot once the last session ends.
        self.reset_when_idle = False

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

    def station_requests(self, now: datetime) -> list[Request]:
        return []

    def status_requests(
        self, connector: Connector, previous: str | None, now: datetime
    ) -> list[Request]:
        status = self.wire_status(connector)
        self.model.set_value("EVSE", "AvailabilityState", status, evse=connector.evse)
        requests: list[Request] = [
            (
                "StatusNotification",
                {
                    "timestamp": format_timestamp(now),
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
            "timestamp": format_timestamp(now),
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
            "generatedAt": format_timestamp(now),
            "seqNo": next(self._event_seq),
            "tbc": False,
            "eventData": [event],
        }

    def authorize_request(self, id_tag: str) -> dict[str, Any]:
        return {"idToken": id_token(id_tag)}

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
        values: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        info: dict[str, Any] = {"transactionId": tx.key, "chargingState": tx.charging_state}
        payload: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": format_timestamp(now),
            "triggerReason": trigger,
            "seqNo": tx.next_seq_no(),
            "transactionInfo": info,
            "evse": {"id": tx.evse, "connectorId": 1},
        }
        if offline:
            payload["offline"] = True
        if values:
            payload["meterValue"] = values
        return payload

    def started(
        self, tx: Transaction, connector: Connector, trigger: str, now: datetime, offline: bool
    ) -> list[QueuedMessage]:
        # begun at plug-in (no token), the EV only waits, unless the station is free vend
        waiting = tx.id_tag is None and not self.settings.free_vend()
        tx.charging_state = "EVConnected" if waiting else "Charging"
        begin = tx.last_sample or connector.meter.sample()
        begin_value = meter_value(
            now, begin, ("Energy.Active.Import.Register",), "Transaction.Begin", 0.0
        )
        payload = self._event("Started", tx, trigger, now, offline, begin_value)
        self._add_token(payload, tx)
        if tx.reservation_id is not None:
            payload["reservationId"] = tx.reservation_id
        return [QueuedMessage("TransactionEvent", payload, tx.key, generated_offline=offline)]

    def authorized(
        self, tx: Transaction, connector: Connector, trigger: str, now: datetime, offline: bool
    ) -> list[QueuedMessage]:
        """TxStartPoint ``EVConnected``: the token comes in an ``Updated`` (triggerReason
        ``Authorized``, or ``RemoteStart`` with its ``remoteStartId``), and charging begins."""
        tx.charging_state = "Charging"
        payload = self._event("Updated", tx, trigger, now, offline)
        self._add_token(payload, tx)
        return [QueuedMessage("TransactionEvent", payload, tx.key, generated_offline=offline)]

    @staticmethod
    def _add_token(payload: dict[str, Any], tx: Transaction) -> None:
        if tx.id_tag is not None:
            payload["idToken"] = id_token(tx.id_tag)
        if tx.remote_start_id is not None:
            payload["transactionInfo"]["remoteStartId"] = tx.remote_start_id

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
        periodic = meter_value(
            now, sample, self.settings.measurands(), "Sample.Periodic", connector.meter.offered_w()
        )
        payload = self._event("Updated", tx, trigger, now, offline, periodic)
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
        end_value = meter_value(now, sample, measurands, "Transaction.End", 0.0)
        payload = self._event("Ended", tx, trigger, now, offline, end_value)
        payload["transactionInfo"]["stoppedReason"] = stopped
        if reason == "Local" and tx.id_tag is not None:
            payload["idToken"] = id_token(tx.id_tag)
        return [QueuedMessage("TransactionEvent", payload, tx.key, generated_offline=offline)]

    def prepare(self, message: QueuedMessage) -> dict[str, Any] | None:
        return message.payload

    def delivered(self, message: QueuedMessage, response: dict[str, Any]) -> None:
        info = response.get("idTokenInfo")
        # the token's answer: in the Started, or in the Updated of a transaction begun at
        # plug-in
        if message.payload["eventType"] == "Ended" or info is None:
            return
        status = info["status"]
        self.charger.auth.cache[message.payload["idToken"]["idToken"]] = status
        if status != "Accepted" and self.settings.stop_on_invalid_id():
            evse = int(message.payload["evse"]["id"])
            self.charger.schedule(
                lambda: self.stop_transaction(evse, message.tx_key, "DeAuthorized")
            )

    async def stop_transaction(self, evse: int, key: str, reason: StopReason) -> None:
        await super().stop_transaction(evse, key, reason)
        self._maybe_reset()

    def _maybe_reset(self) -> None:
        if self.reset_when_idle and all(
            c.transaction is None for c in self.charger.connectors.values()
        ):
            self.reset_when_idle = False
            self.charger.schedule(lambda: self.charger.reboot("SoftReset", "RemoteReset"))

    def find_transaction(self, transaction_id: str) -> Transaction | None:
        for connector in self.charger.connectors.values():
            if connector.transaction is not None and connector.transaction.key == transaction_id:
                return connector.transaction
        return None
