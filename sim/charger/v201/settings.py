"""The OCPP 2.0.1 device model of a simulated charging station: components and
variables with mutability, data types and validation, as GetVariables, SetVariables and
GetBaseReport see them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sim.charger.model import DEFAULT_MEASURANDS, SUPPORTED_MEASURANDS, MeterInterval, comma_list

DataType = Literal[
    "string", "decimal", "integer", "boolean", "OptionList", "MemberList", "SequenceList"
]
Mutability = Literal["ReadOnly", "WriteOnly", "ReadWrite"]


@dataclass
class Variable:
    component: str
    name: str
    value: str
    data_type: DataType = "string"
    mutability: Mutability = "ReadWrite"
    evse: int | None = None
    values_list: tuple[str, ...] = ()
    unit: str | None = None
    reboot_required: bool = False

    def accepts(self, value: str) -> bool:
        if self.data_type == "integer":
            return value.lstrip("-").isdigit() and int(value) >= 0
        if self.data_type == "decimal":
            try:
                return float(value) >= 0
            except ValueError:
                return False
        if self.data_type == "boolean":
            return value in {"true", "false"}
        if self.data_type == "OptionList":
            return value in self.values_list
        if self.data_type in {"MemberList", "SequenceList"}:
            return all(item in self.values_list for item in comma_list(value))
        return len(value) <= 1000

    def component_json(self) -> dict[str, Any]:
        component: dict[str, Any] = {"name": self.component}
        if self.evse is not None:
            component["evse"] = {"id": self.evse}
        return component

    def report(self) -> dict[str, Any]:
        characteristics: dict[str, Any] = {
            "dataType": self.data_type,
            "supportsMonitoring": False,
        }
        if self.values_list:
            characteristics["valuesList"] = ",".join(self.values_list)
        if self.unit:
            characteristics["unit"] = self.unit
        attribute: dict[str, Any] = {"type": "Actual", "mutability": self.mutability}
        if self.mutability != "WriteOnly":
            attribute["value"] = self.value
        return {
            "component": self.component_json(),
            "variable": {"name": self.name},
            "variableAttribute": [attribute],
            "variableCharacteristics": characteristics,
        }


GetStatus = Literal[
    "Accepted", "Rejected", "UnknownComponent", "UnknownVariable", "NotSupportedAttributeType"
]
SetStatus = Literal[
    "Accepted",
    "Rejected",
    "UnknownComponent",
    "UnknownVariable",
    "NotSupportedAttributeType",
    "RebootRequired",
]


class DeviceModel:
    def __init__(
        self, *, evses: int, meter_interval: float, password: str | None, vendor: str, model: str
    ) -> None:
        self.meter_interval = MeterInterval(meter_interval)
        interval = self.meter_interval.shown
        measurands = ",".join(DEFAULT_MEASURANDS)
        allowed = tuple(sorted(SUPPORTED_MEASURANDS))
        rows = [
            Variable("ChargingStation", "Model", model, mutability="ReadOnly"),
            Variable("ChargingStation", "VendorName", vendor, mutability="ReadOnly"),
            Variable("ChargingStation", "AvailabilityState", "Available", mutability="ReadOnly"),
            Variable("ChargingStation", "Available", "true", "boolean", "ReadOnly"),
            Variable("OCPPCommCtrlr", "HeartbeatInterval", "300", "integer", unit="s"),
            Variable("OCPPCommCtrlr", "MessageAttempts", "3", "integer"),
            Variable("OCPPCommCtrlr", "MessageAttemptInterval", "10", "integer", unit="s"),
            Variable("OCPPCommCtrlr", "OfflineThreshold", "60", "integer", unit="s"),
            Variable("OCPPCommCtrlr", "ResetRetries", "1", "integer"),
            Variable("OCPPCommCtrlr", "WebSocketPingInterval", "60", "integer", unit="s"),
            Variable("SampledDataCtrlr", "TxUpdatedInterval", interval, "integer", unit="s"),
            Variable(
                "SampledDataCtrlr",
                "TxUpdatedMeasurands",
                measurands,
                "MemberList",
                values_list=allowed,
            ),
            Variable(
                "SampledDataCtrlr",
                "TxStartedMeasurands",
                "Energy.Active.Import.Register",
                "MemberList",
                values_list=allowed,
            ),
            Variable(
                "SampledDataCtrlr",
                "TxEndedMeasurands",
                "Energy.Active.Import.Register",
                "MemberList",
                values_list=allowed,
            ),
            Variable("SampledDataCtrlr", "TxEndedInterval", "0", "integer", unit="s"),
            Variable("AlignedDataCtrlr", "Interval", "0", "integer", unit="s"),
            Variable(
                "AlignedDataCtrlr",
                "Measurands",
                "Energy.Active.Import.Register",
                "MemberList",
                values_list=allowed,
            ),
            Variable("SmartChargingCtrlr", "Enabled", "true", "boolean", "ReadOnly"),
            Variable("SmartChargingCtrlr", "RateUnit", "A,W", mutability="ReadOnly"),
            Variable("SmartChargingCtrlr", "ProfileStackLevel", "8", "integer", "ReadOnly"),
            Variable("SmartChargingCtrlr", "PeriodsPerSchedule", "24", "integer", "ReadOnly"),
            Variable("AuthCtrlr", "Enabled", "true", "boolean"),
            Variable("AuthCtrlr", "AuthorizeRemoteStart", "false", "boolean"),
            Variable("AuthCtrlr", "LocalAuthorizeOffline", "true", "boolean"),
            Variable("AuthCtrlr", "LocalPreAuthorize", "false", "boolean"),
            Variable("AuthCtrlr", "OfflineTxForUnknownIdEnabled", "true", "boolean"),
            Variable("AuthCacheCtrlr", "Enabled", "true", "boolean"),
            Variable("LocalAuthListCtrlr", "Enabled", "true", "boolean"),
            Variable("LocalAuthListCtrlr", "Entries", "0", "integer", "ReadOnly"),
            Variable("LocalAuthListCtrlr", "ItemsPerMessage", "250", "integer", "ReadOnly"),
            Variable("TxCtrlr", "EVConnectionTimeOut", "120", "integer", unit="s"),
            Variable("TxCtrlr", "StopTxOnInvalidId", "true", "boolean"),
            Variable("TxCtrlr", "StopTxOnEVSideDisconnect", "true", "boolean", "ReadOnly"),
            Variable(
                "TxCtrlr",
                "TxStartPoint",
                "PowerPathClosed",
                "MemberList",
                values_list=("Authorized", "EVConnected", "PowerPathClosed"),
            ),
            Variable(
                "TxCtrlr",
                "TxStopPoint",
                "PowerPathClosed",
                "MemberList",
                values_list=("Authorized", "EVConnected", "PowerPathClosed"),
            ),
            Variable("ReservationCtrlr", "Enabled", "true", "boolean"),
            Variable("SmartChargingCtrlr", "Enabled", "true", "boolean"),
            Variable("DeviceDataCtrlr", "ItemsPerMessage", "50", "integer", "ReadOnly"),
            Variable(
                "SecurityCtrlr", "SecurityProfile", "1" if password else "0", "integer", "ReadOnly"
            ),
            Variable("SecurityCtrlr", "BasicAuthPassword", password or "", "string", "WriteOnly"),
        ]
        for evse in range(1, evses + 1):
            rows.append(
                Variable("EVSE", "AvailabilityState", "Available", mutability="ReadOnly", evse=evse)
            )
            rows.append(Variable("EVSE", "Power", "0", "decimal", "ReadOnly", evse=evse, unit="W"))
        self.rows = rows
        self._index = {(v.component, v.evse, v.name): v for v in rows}

    def __iter__(self) -> Iterator[Variable]:
        return iter(self.rows)

    def find(self, component: dict[str, Any], variable: dict[str, Any]) -> Variable | GetStatus:
        evse = component.get("evse", {}).get("id")
        row = self._index.get((component["name"], evse, variable["name"]))
        if row is not None:
            return row
        if not any(v.component == component["name"] for v in self.rows):
            return "UnknownComponent"
        return "UnknownVariable"

    def get(self, component: str, name: str, evse: int | None = None) -> str:
        return self._index[(component, evse, name)].value

    def set_value(self, component: str, name: str, value: str, evse: int | None = None) -> None:
        self._index[(component, evse, name)].value = value

    def get_result(self, request: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"component": request["component"], "variable": request["variable"]}
        attribute = request.get("attributeType", "Actual")
        if attribute != "Actual":
            out.update(attributeStatus="NotSupportedAttributeType", attributeType=attribute)
            return out
        found = self.find(request["component"], request["variable"])
        if isinstance(found, str):
            out["attributeStatus"] = found
        elif found.mutability == "WriteOnly":
            out["attributeStatus"] = "Rejected"
        else:
            out.update(attributeStatus="Accepted", attributeValue=found.value)
        return out

    def set_result(self, request: dict[str, Any]) -> tuple[dict[str, Any], Variable | None]:
        out: dict[str, Any] = {"component": request["component"], "variable": request["variable"]}
        attribute = request.get("attributeType", "Actual")
        if attribute != "Actual":
            out.update(attributeStatus="NotSupportedAttributeType", attributeType=attribute)
            return out, None
        found = self.find(request["component"], request["variable"])
        if isinstance(found, str):
            out["attributeStatus"] = found
            return out, None
        value = str(request["attributeValue"])
        if found.mutability == "ReadOnly" or not found.accepts(value):
            out["attributeStatus"] = "Rejected"
            return out, None
        found.value = value
        out["attributeStatus"] = "RebootRequired" if found.reboot_required else "Accepted"
        return out, found


class Settings201:
    """The core's view of the 2.0.1 device model."""

    def __init__(self, model: DeviceModel) -> None:
        self.model = model

    def _bool(self, component: str, name: str) -> bool:
        return self.model.get(component, name) == "true"

    def heartbeat_interval(self) -> float:
        return float(int(self.model.get("OCPPCommCtrlr", "HeartbeatInterval")) or 300)

    def set_heartbeat_interval(self, seconds: int) -> None:
        self.model.set_value("OCPPCommCtrlr", "HeartbeatInterval", str(seconds))

    def meter_interval(self) -> float:
        return self.model.meter_interval.current(
            self.model.get("SampledDataCtrlr", "TxUpdatedInterval")
        )

    def measurands(self) -> tuple[str, ...]:
        return comma_list(self.model.get("SampledDataCtrlr", "TxUpdatedMeasurands"))

    def ended_measurands(self) -> tuple[str, ...]:
        return comma_list(self.model.get("SampledDataCtrlr", "TxEndedMeasurands"))

    def authorize_remote_start(self) -> bool:
        return self._bool("AuthCtrlr", "AuthorizeRemoteStart")

    def local_authorize_offline(self) -> bool:
        return self._bool("AuthCtrlr", "LocalAuthorizeOffline")

    def offline_tx_for_unknown_id(self) -> bool:
        return self._bool("AuthCtrlr", "OfflineTxForUnknownIdEnabled")

    def stop_on_invalid_id(self) -> bool:
        return self._bool("TxCtrlr", "StopTxOnInvalidId")

    def tx_starts_at_plug_in(self) -> bool:
        return self.model.get("TxCtrlr", "TxStartPoint") == "EVConnected"

    def free_vend(self) -> bool:
        return not self._bool("AuthCtrlr", "Enabled")

    def tx_message_attempts(self) -> int:
        return max(1, int(self.model.get("OCPPCommCtrlr", "MessageAttempts")))

    def tx_message_retry_interval(self) -> float:
        return float(self.model.get("OCPPCommCtrlr", "MessageAttemptInterval"))

    def password(self) -> str | None:
        return self.model.get("SecurityCtrlr", "BasicAuthPassword") or None
