"""OCPP 1.6 configuration keys of a simulated charge point: a real key store with
read-only keys, typed values and validation, as GetConfiguration/ChangeConfiguration
see it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sim.charger.model import DEFAULT_MEASURANDS, SUPPORTED_MEASURANDS, MeterInterval, comma_list

ChangeResult = Literal["Accepted", "Rejected", "RebootRequired", "NotSupported"]


def _int_at_least(minimum: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        return value.lstrip("-").isdigit() and int(value) >= minimum

    return check


def _bool(value: str) -> bool:
    return value.lower() in {"true", "false"}


def _measurands(value: str) -> bool:
    return all(item in SUPPORTED_MEASURANDS for item in comma_list(value))


def _any(value: str) -> bool:
    return True


def _password(value: str) -> bool:
    return 8 <= len(value) <= 40


@dataclass
class Key:
    value: str
    readonly: bool = False
    check: Callable[[str], bool] = _any
    reboot_required: bool = False
    # Write-only keys (AuthorizationKey) are never reported by GetConfiguration.
    secret: bool = False


class ConfigurationKeys:
    def __init__(self, *, connectors: int, meter_interval: float, password: str | None) -> None:
        self.meter_interval = MeterInterval(meter_interval)
        interval = self.meter_interval.shown
        self.keys: dict[str, Key] = {
            "HeartbeatInterval": Key("300", check=_int_at_least(0)),
            "MeterValueSampleInterval": Key(interval, check=_int_at_least(0)),
            "ClockAlignedDataInterval": Key("0", check=_int_at_least(0)),
            "MeterValuesSampledData": Key(",".join(DEFAULT_MEASURANDS), check=_measurands),
            "MeterValuesAlignedData": Key("Energy.Active.Import.Register", check=_measurands),
            "StopTxnSampledData": Key("Energy.Active.Import.Register", check=_measurands),
            "StopTxnAlignedData": Key("", check=_measurands),
            "ConnectionTimeOut": Key("120", check=_int_at_least(0)),
            "NumberOfConnectors": Key(str(connectors), readonly=True),
            "AuthorizeRemoteTxRequests": Key("false", check=_bool),
            "LocalAuthorizeOffline": Key("true", check=_bool),
            "LocalPreAuthorize": Key("false", check=_bool),
            "AllowOfflineTxForUnknownId": Key("true", check=_bool),
            "AuthorizationCacheEnabled": Key("true", check=_bool),
            "LocalAuthListEnabled": Key("true", check=_bool),
            "LocalAuthListMaxLength": Key("1000", readonly=True),
            "SendLocalListMaxLength": Key("250", readonly=True),
            "ChargingScheduleAllowedChargingRateUnit": Key("Current,Power", readonly=True),
            "ChargingScheduleMaxPeriods": Key("24", readonly=True),
            "MaxChargingProfilesInstalled": Key("16", readonly=True),
            "StopTransactionOnInvalidId": Key("true", check=_bool),
            "StopTransactionOnEVSideDisconnect": Key("true", check=_bool),
            "UnlockConnectorOnEVSideDisconnect": Key("true", check=_bool),
            "TransactionMessageAttempts": Key("3", check=_int_at_least(1)),
            "TransactionMessageRetryInterval": Key("10", check=_int_at_least(0)),
            "ResetRetries": Key("1", check=_int_at_least(0)),
            "WebSocketPingInterval": Key("60", check=_int_at_least(0), reboot_required=True),
            "GetConfigurationMaxKeys": Key("50", readonly=True),
            "ChargeProfileMaxStackLevel": Key("8", readonly=True),
            "SupportedFeatureProfiles": Key(
                "Core,FirmwareManagement,LocalAuthListManagement,Reservation,"
                "SmartCharging,RemoteTrigger",
                readonly=True,
            ),
            "ReserveConnectorZeroSupported": Key("false", readonly=True),
            "AuthorizationKey": Key(password or "", check=_password, secret=True),
            "SecurityProfile": Key("1" if password else "0", readonly=True),
        }

    def get(self, name: str) -> str:
        return self.keys[name].value

    def get_int(self, name: str) -> int:
        return int(self.keys[name].value)

    def get_bool(self, name: str) -> bool:
        return self.keys[name].value.lower() == "true"

    def report(self, names: list[str] | None) -> dict[str, Any]:
        """The GetConfiguration answer for ``names`` (all keys when None or empty)."""
        wanted = names or [name for name, key in self.keys.items() if not key.secret]
        known = [name for name in wanted if name in self.keys and not self.keys[name].secret]
        unknown = [name for name in wanted if name not in known]
        answer: dict[str, Any] = {
            "configurationKey": [
                {"key": name, "readonly": self.keys[name].readonly, "value": self.keys[name].value}
                for name in known
            ]
        }
        if unknown:
            answer["unknownKey"] = unknown
        return answer

    def change(self, name: str, value: str) -> ChangeResult:
        key = self.keys.get(name)
        if key is None:
            return "NotSupported"
        if key.readonly or not key.check(value):
            return "Rejected"
        key.value = value
        return "RebootRequired" if key.reboot_required else "Accepted"


class Settings16:
    """The core's view of the 1.6 key store."""

    def __init__(self, keys: ConfigurationKeys) -> None:
        self.keys = keys

    def heartbeat_interval(self) -> float:
        return float(self.keys.get_int("HeartbeatInterval") or 300)

    def set_heartbeat_interval(self, seconds: int) -> None:
        self.keys.keys["HeartbeatInterval"].value = str(seconds)

    def meter_interval(self) -> float:
        return self.keys.meter_interval.current(self.keys.get("MeterValueSampleInterval"))

    def measurands(self) -> tuple[str, ...]:
        return comma_list(self.keys.get("MeterValuesSampledData"))

    def authorize_remote_start(self) -> bool:
        return self.keys.get_bool("AuthorizeRemoteTxRequests")

    def local_authorize_offline(self) -> bool:
        return self.keys.get_bool("LocalAuthorizeOffline")

    def offline_tx_for_unknown_id(self) -> bool:
        return self.keys.get_bool("AllowOfflineTxForUnknownId")

    def stop_on_invalid_id(self) -> bool:
        return self.keys.get_bool("StopTransactionOnInvalidId")

    def tx_starts_at_plug_in(self) -> bool:
        return False  # a 1.6 transaction always starts with its idTag

    def free_vend(self) -> bool:
        return False

    def tx_message_attempts(self) -> int:
        return self.keys.get_int("TransactionMessageAttempts")

    def tx_message_retry_interval(self) -> float:
        return float(self.keys.get_int("TransactionMessageRetryInterval"))

    def password(self) -> str | None:
        return self.keys.get("AuthorizationKey") or None
