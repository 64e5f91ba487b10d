"""OCPP 1.6J answers of the simulated charge point to the central system's calls.

Each ``on_<Action>`` answers at once; what the charger does about it (stop a session,
reboot, send notifications) runs after the answer has been sent (``Reply.then``), as a
real charge point would. The messages it sends are built in
:mod:`sim.charger.v16.messages`.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from common.timestamps import format_timestamp, parse_timestamp
from sim.charger.model import Reservation, StopReason
from sim.charger.rpc import Reply
from sim.charger.v16.messages import Messages16, sampled_values


class Charger16(Messages16):
    """A 1.6 charge point: its messages, and its answers to the central system."""

    async def on_RemoteStartTransaction(self, payload: dict[str, Any]) -> Reply:
        charger = self.charger
        id_tag = str(payload["idTag"])
        evse = payload.get("connectorId") or charger.free_connector(id_tag)
        if not charger.online or evse is None or not self.known(evse):
            return Reply({"status": "Rejected"})
        if not self.can_start(charger.connectors[evse], id_tag):
            return Reply({"status": "Rejected"})
        profile = payload.get("chargingProfile")
        if profile is not None:
            self._apply_profile(evse, profile)
        return Reply({"status": "Accepted"}, then=lambda: charger.remote_start(evse, id_tag, None))

    async def on_RemoteStopTransaction(self, payload: dict[str, Any]) -> Reply:
        tx = self.transaction_by_remote_id(int(payload["transactionId"]))
        if tx is None:
            return Reply({"status": "Rejected"})
        return Reply(
            {"status": "Accepted"}, then=lambda: self.stop_transaction(tx.evse, tx.key, "Remote")
        )

    async def on_Reset(self, payload: dict[str, Any]) -> Reply:
        hard = payload["type"] == "Hard"
        reason: StopReason = "HardReset" if hard else "SoftReset"
        return Reply(
            {"status": "Accepted"}, then=lambda: self.charger.reboot(reason, "RemoteReset")
        )

    async def on_UnlockConnector(self, payload: dict[str, Any]) -> Reply:
        evse = int(payload["connectorId"])
        if not self.known(evse):
            return Reply({"status": "NotSupported"})
        tx = self.charger.connectors[evse].transaction
        if tx is None:
            return Reply({"status": "Unlocked"})
        # The session ends (reason UnlockCommand) right after the answer.
        return Reply(
            {"status": "Unlocked"},
            then=lambda: self.stop_transaction(evse, tx.key, "UnlockCommand"),
        )

    async def on_ChangeAvailability(self, payload: dict[str, Any]) -> Reply:
        charger = self.charger
        evse = int(payload["connectorId"])
        if evse != 0 and not self.known(evse):
            return Reply({"status": "Rejected"})
        operative = payload["type"] == "Operative"
        busy = any(
            c.transaction is not None for n, c in charger.connectors.items() if evse in (0, n)
        )
        status = "Scheduled" if busy and not operative else "Accepted"

        async def apply() -> None:
            await charger.set_operative(evse or None, operative)
            if evse == 0:
                for action, request in self.station_requests(charger.clock.now()):
                    await charger.link.send_or_log(action, request)

        return Reply({"status": status}, then=apply)

    async def on_TriggerMessage(self, payload: dict[str, Any]) -> Reply:
        what = payload["requestedMessage"]
        evse = payload.get("connectorId")
        if evse is not None and evse != 0 and not self.known(evse):
            return Reply({"status": "Rejected"})
        charger = self.charger
        link = charger.link
        now = charger.clock.now

        async def send() -> None:
            if what == "BootNotification":
                if not link.online:
                    link.trigger_boot()
                    return
                await link.send_or_log("BootNotification", self.boot_request("Triggered"))
            elif what == "Heartbeat":
                await link.send_or_log("Heartbeat", {})
            elif what == "StatusNotification":
                targets = [evse] if evse else list(charger.connectors)
                if not evse:
                    for action, request in self.station_requests(now()):
                        await link.send_or_log(action, request)
                for n in targets:
                    for action, request in self.status_requests(charger.connectors[n], None, now()):
                        await link.send_or_log(action, request)
            elif what == "MeterValues":
                for n in [evse] if evse else list(charger.connectors):
                    await link.send_or_log("MeterValues", self._trigger_meter(n, now()))
            elif what == "DiagnosticsStatusNotification":
                await link.send_or_log("DiagnosticsStatusNotification", {"status": "Idle"})
            elif what == "FirmwareStatusNotification":
                await link.send_or_log("FirmwareStatusNotification", {"status": "Idle"})

        return Reply({"status": "Accepted"}, then=send)

    def _trigger_meter(self, evse: int, now: datetime) -> dict[str, Any]:
        connector = self.charger.connectors[evse]
        payload: dict[str, Any] = {
            "connectorId": evse,
            "meterValue": [
                {
                    "timestamp": format_timestamp(now),
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
            self.charger.link.password = value
        self.charger.log.info("sim.charger.configuration_changed", key=name, status=status)
        return Reply({"status": status})

    async def on_ReserveNow(self, payload: dict[str, Any]) -> Reply:
        evse = int(payload["connectorId"])
        if evse == 0 or not self.known(evse):
            return Reply({"status": "Rejected"})
        connector = self.charger.connectors[evse]
        reservation_id = int(payload["reservationId"])
        status = self.reserve_status(connector, reservation_id)
        if status != "Accepted":
            return Reply({"status": status})
        expires_at = parse_timestamp(payload["expiryDate"], naive_is_utc=True)
        connector.reservation = Reservation(reservation_id, str(payload["idTag"]), expires_at)
        return Reply({"status": "Accepted"}, then=partial(self.charger.publish_change, connector))

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

    async def on_DataTransfer(self, payload: dict[str, Any]) -> Reply:
        refusal = self.data_transfer_refusal(payload)
        if refusal is not None:
            return Reply({"status": refusal})
        return Reply({"status": "Accepted", "data": str(payload.get("data", ""))})

    async def on_GetDiagnostics(self, payload: dict[str, Any]) -> Reply:
        file_name = f"diagnostics-{self.charger.id}.log"[:255]
        link = self.charger.link

        async def upload() -> None:
            for status in ("Uploading", "Uploaded"):
                await link.send_or_log("DiagnosticsStatusNotification", {"status": status})

        return Reply({"fileName": file_name}, then=upload)

    async def on_UpdateFirmware(self, payload: dict[str, Any]) -> Reply:
        link = self.charger.link

        async def update() -> None:
            for status in ("Downloading", "Downloaded", "Installing", "Installed"):
                await link.send_or_log("FirmwareStatusNotification", {"status": status})

        return Reply({}, then=update)

    async def on_SetChargingProfile(self, payload: dict[str, Any]) -> Reply:
        evse = int(payload["connectorId"])
        if evse != 0 and not self.known(evse):
            return Reply({"status": "Rejected"})
        self._apply_profile(evse, payload["csChargingProfiles"])
        return Reply({"status": "Accepted"})

    def _apply_profile(self, evse: int, profile: dict[str, Any]) -> None:
        schedule = profile["chargingSchedule"]
        periods = schedule.get("chargingSchedulePeriod") or []
        if periods:
            self.limit_power(evse, float(periods[0]["limit"]), schedule["chargingRateUnit"])
