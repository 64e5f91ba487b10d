"""The steps of a charging session in each OCPP version, for tests that run both."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from ocpp_handlers.schemas import Version
from tests.ocpp_client import RawCharger


def ts(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Flow(Protocol):
    charger: RawCharger

    async def boot(self) -> dict[str, Any]: ...
    async def plug(self, evse: int) -> None: ...
    async def authorize(self, id_tag: str) -> str: ...
    async def start(self, evse: int, id_tag: str, meter_wh: float, at: datetime) -> str: ...
    async def meter(
        self, evse: int, tx: str, energy: float, unit: str, at: datetime, power_w: float = 7000
    ) -> None: ...
    async def stop(self, evse: int, tx: str, meter_wh: float, at: datetime) -> None: ...


class Flow16:
    def __init__(self, charger: RawCharger) -> None:
        self.charger = charger

    async def boot(self) -> dict[str, Any]:
        return await self.charger.call(
            "BootNotification", {"chargePointVendor": "TestVendor", "chargePointModel": "T16"}
        )

    async def plug(self, evse: int) -> None:
        await self.charger.call(
            "StatusNotification",
            {"connectorId": evse, "errorCode": "NoError", "status": "Preparing"},
        )

    async def authorize(self, id_tag: str) -> str:
        answer = await self.charger.call("Authorize", {"idTag": id_tag})
        return str(answer["idTagInfo"]["status"])

    async def start(self, evse: int, id_tag: str, meter_wh: float, at: datetime) -> str:
        answer = await self.charger.call(
            "StartTransaction",
            {
                "connectorId": evse,
                "idTag": id_tag,
                "meterStart": int(meter_wh),
                "timestamp": ts(at),
            },
        )
        return str(answer["transactionId"])

    async def meter(
        self, evse: int, tx: str, energy: float, unit: str, at: datetime, power_w: float = 7000
    ) -> None:
        await self.charger.call(
            "MeterValues",
            {
                "connectorId": evse,
                "transactionId": int(tx),
                "meterValue": [
                    {
                        "timestamp": ts(at),
                        "sampledValue": [
                            {
                                "value": f"{energy}",
                                "measurand": "Energy.Active.Import.Register",
                                "unit": unit,
                            },
                            {
                                "value": f"{power_w}",
                                "measurand": "Power.Active.Import",
                                "unit": "W",
                            },
                            {"value": "16", "measurand": "Current.Import", "unit": "A"},
                            {"value": "230", "measurand": "Voltage", "unit": "V"},
                        ],
                    }
                ],
            },
        )

    async def stop(self, evse: int, tx: str, meter_wh: float, at: datetime) -> None:
        await self.charger.call(
            "StopTransaction",
            {
                "transactionId": int(tx),
                "meterStop": int(meter_wh),
                "timestamp": ts(at),
                "reason": "EVDisconnected",
            },
        )


class Flow201:
    def __init__(self, charger: RawCharger) -> None:
        self.charger = charger
        self.seq = 0

    def _seq(self) -> int:
        self.seq += 1
        return self.seq

    async def boot(self) -> dict[str, Any]:
        return await self.charger.call(
            "BootNotification",
            {"chargingStation": {"vendorName": "TestVendor", "model": "T201"}, "reason": "PowerUp"},
        )

    async def plug(self, evse: int) -> None:
        await self.charger.call(
            "StatusNotification",
            {
                "timestamp": ts(datetime.now().astimezone()),
                "connectorStatus": "Occupied",
                "evseId": evse,
                "connectorId": 1,
            },
        )

    async def authorize(self, id_tag: str) -> str:
        answer = await self.charger.call(
            "Authorize", {"idToken": {"idToken": id_tag, "type": "ISO14443"}}
        )
        return str(answer["idTokenInfo"]["status"])

    def _meter(
        self, energy: float, unit: str, at: datetime, power_w: float = 7000
    ) -> list[dict[str, Any]]:
        return [
            {
                "timestamp": ts(at),
                "sampledValue": [
                    {
                        "value": energy,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": unit},
                    },
                    {
                        "value": power_w,
                        "measurand": "Power.Active.Import",
                        "unitOfMeasure": {"unit": "W"},
                    },
                    {"value": 16, "measurand": "Current.Import"},
                    {"value": 230, "measurand": "Voltage"},
                ],
            }
        ]

    async def start(self, evse: int, id_tag: str, meter_wh: float, at: datetime) -> str:
        tx = str(uuid.uuid4())
        await self.charger.call(
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": ts(at),
                "triggerReason": "Authorized",
                "seqNo": self._seq(),
                "transactionInfo": {"transactionId": tx, "chargingState": "Charging"},
                "idToken": {"idToken": id_tag, "type": "ISO14443"},
                "evse": {"id": evse, "connectorId": 1},
                "meterValue": self._meter(meter_wh, "Wh", at),
            },
        )
        return tx

    async def meter(
        self, evse: int, tx: str, energy: float, unit: str, at: datetime, power_w: float = 7000
    ) -> None:
        await self.charger.call(
            "TransactionEvent",
            {
                "eventType": "Updated",
                "timestamp": ts(at),
                "triggerReason": "MeterValuePeriodic",
                "seqNo": self._seq(),
                "transactionInfo": {"transactionId": tx, "chargingState": "Charging"},
                "evse": {"id": evse, "connectorId": 1},
                "meterValue": self._meter(energy, unit, at, power_w),
            },
        )

    async def stop(self, evse: int, tx: str, meter_wh: float, at: datetime) -> None:
        await self.charger.call(
            "TransactionEvent",
            {
                "eventType": "Ended",
                "timestamp": ts(at),
                "triggerReason": "EVCommunicationLost",
                "seqNo": self._seq(),
                "transactionInfo": {"transactionId": tx, "stoppedReason": "EVDisconnected"},
                "evse": {"id": evse, "connectorId": 1},
                "meterValue": self._meter(meter_wh, "Wh", at, 0),
            },
        )


def flow_for(charger: RawCharger) -> Flow:
    return Flow16(charger) if charger.version is Version.V16 else Flow201(charger)
