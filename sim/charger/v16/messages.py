"""OCPP 1.6J messages of the simulated charge point: what it sends, and the bookkeeping
of transaction ids.

Transaction ids are the central system's: the charger starts a transaction under a local
key and, when the StartTransaction answer arrives (maybe after a reconnection), rewrites
the queued MeterValues/StopTransaction with the real id. The answers to the central
system's calls are in :mod:`sim.charger.v16.commands`.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import TYPE_CHECKING, Any

from common.timestamps import format_timestamp
from sim.charger.curve import MeterSample
from sim.charger.model import MEASURAND_UNITS, Connector, StopReason, Transaction, comma_list
from sim.charger.offline_queue import QueuedMessage
from sim.charger.protocol import ProtocolBase, Request
from sim.charger.v16.settings import ConfigurationKeys, Settings16

if TYPE_CHECKING:
    from sim.charger.core import SimCharger


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
            "unit": MEASURAND_UNITS[measurand],
        }
        value["location"] = "EV" if measurand == "SoC" else "Outlet"
        out.append(value)
    return out


class Messages16(ProtocolBase):
    """What a 1.6 charge point sends, built for the core; the central system's
    transaction ids as they arrive."""

    def __init__(self, charger: SimCharger) -> None:
        super().__init__(charger)
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

    def station_requests(self, now: datetime) -> list[Request]:
        operative = any(c.operative for c in self.charger.connectors.values())
        status = "Available" if operative else "Unavailable"
        return [
            (
                "StatusNotification",
                {
                    "connectorId": 0,
                    "errorCode": "NoError",
                    "status": status,
                    "timestamp": format_timestamp(now),
                },
            )
        ]

    def status_requests(
        self, connector: Connector, previous: str | None, now: datetime
    ) -> list[Request]:
        payload: dict[str, Any] = {
            "connectorId": connector.evse,
            "errorCode": "NoError",
            "status": connector.status.value,
            "timestamp": format_timestamp(now),
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
            "idTag": (tx.id_tag or "")[:20],
            "meterStart": round(tx.meter_start_wh),
            "timestamp": format_timestamp(now),
        }
        if tx.reservation_id is not None:
            payload["reservationId"] = tx.reservation_id
        return [QueuedMessage("StartTransaction", payload, tx.key, generated_offline=offline)]

    def authorized(
        self, tx: Transaction, connector: Connector, trigger: str, now: datetime, offline: bool
    ) -> list[QueuedMessage]:
        raise NotImplementedError("a 1.6 transaction starts with its idTag")

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
                            "timestamp": format_timestamp(now),
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
        stop_measurands = comma_list(self.keys.get("StopTxnSampledData")) or (
            "Energy.Active.Import.Register",
        )
        begin = {
            "timestamp": format_timestamp(tx.started_at),
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
            "timestamp": format_timestamp(now),
            "sampledValue": sampled_values(sample, stop_measurands, "Transaction.End", 0.0),
        }
        payload: dict[str, Any] = {
            "idTag": (tx.id_tag or "")[:20],
            "meterStop": round(sample.energy_wh),
            "timestamp": format_timestamp(now),
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
                charger.schedule(lambda: self.stop_transaction(evse, tx.key, "DeAuthorized"))
        charger.log.info(
            "sim.charger.tx_confirmed", tx=message.tx_key, transaction_id=remote_id, status=status
        )

    def transaction_by_remote_id(self, remote_id: int) -> Transaction | None:
        for connector in self.charger.connectors.values():
            tx = connector.transaction
            if tx is not None and self.tx_ids.get(tx.key) == remote_id:
                return tx
        return None
