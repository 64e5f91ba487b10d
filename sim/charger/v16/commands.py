"""OCPP 1.6J answers of the simulated charge point to the central system's calls.

Each ``on_<Action>`` answers at once; what the charger does about it (stop a session,
reboot, send notifications) runs after the answer has been sent (``Reply.then``), as a
real charge point would. The messages it sends are built in
:mod:`sim.charger.v16.messages`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.timestamps import format_timestamp
from sim.charger import firmware
from sim.charger.log_upload import LogUploading
from sim.charger.model import StopReason, Transaction
from sim.charger.profiles import Profile, profile_v16
from sim.charger.rpc import Reply
from sim.charger.v16.messages import Messages16, sampled_values


class Charger16(Messages16, LogUploading):
    """A 1.6 charge point: its messages, and its answers to the central system."""

    async def on_RemoteStartTransaction(self, payload: dict[str, Any]) -> Reply:
        evse = payload.get("connectorId")
        return self.remote_start(evse, str(payload["idTag"]), None, payload.get("chargingProfile"))

    async def on_RemoteStopTransaction(self, payload: dict[str, Any]) -> Reply:
        return self.remote_stop(self.transaction_by_remote_id(int(payload["transactionId"])))

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
        status = self.availability(evse, operative)

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
            if await self.send_triggered(what):
                return
            if what == "StatusNotification":
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

        return Reply({"status": "Accepted"}, then=send)

    async def on_ExtendedTriggerMessage(self, payload: dict[str, Any]) -> Reply:
        """The Security Whitepaper's trigger: what TriggerMessage can ask for, plus a
        log status and a certificate signing request."""
        what = payload["requestedMessage"]
        link = self.charger.link
        if what == "LogStatusNotification":
            return Reply(
                {"status": "Accepted"},
                then=lambda: link.send_or_log("LogStatusNotification", {"status": "Idle"}),
            )
        if what == "SignChargePointCertificate":
            csr = f"-----BEGIN CERTIFICATE REQUEST-----\n{self.charger.id}\n"
            return Reply(
                {"status": "Accepted"},
                then=lambda: link.send_or_log("SignCertificate", {"csr": csr}),
            )
        return await self.on_TriggerMessage(payload)

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
        reservation_id, id_tag = int(payload["reservationId"]), str(payload["idTag"])
        return self.reserve(evse, reservation_id, id_tag, payload["expiryDate"])

    async def on_SendLocalList(self, payload: dict[str, Any]) -> Reply:
        entries = [
            (entry["idTag"], entry["idTagInfo"]["status"] if "idTagInfo" in entry else None)
            for entry in payload.get("localAuthorizationList", [])
        ]
        status = self.update_local_list(
            int(payload["listVersion"]),
            payload["updateType"],
            entries,
            max_entries=self.keys.get_int("SendLocalListMaxLength"),
        )
        return Reply({"status": status})

    async def on_GetLocalListVersion(self, payload: dict[str, Any]) -> Reply:
        return Reply({"listVersion": self.charger.auth.local_version})

    async def on_DataTransfer(self, payload: dict[str, Any]) -> Reply:
        refusal = self.data_transfer_refusal(payload)
        if refusal is not None:
            return Reply({"status": refusal})
        return Reply({"status": "Accepted", "data": str(payload.get("data", ""))})

    async def on_GetDiagnostics(self, payload: dict[str, Any]) -> Reply:
        file_name, content = self.log_file("DiagnosticsLog")
        link = self.charger.link

        async def upload() -> None:
            await link.send_or_log("DiagnosticsStatusNotification", {"status": "Uploading"})
            ok = await self.upload_log(
                payload["location"], file_name, content,
                min(payload.get("retries", 0), 5), payload.get("retryInterval", 1),
            )  # fmt: skip
            status = "Uploaded" if ok else "UploadFailed"
            await link.send_or_log("DiagnosticsStatusNotification", {"status": status})

        return Reply({"fileName": file_name}, then=upload)

    async def on_UpdateFirmware(self, payload: dict[str, Any]) -> Reply:
        """1.6 core: statuses without a request id (sim.charger.firmware)."""
        charger, link = self.charger, self.charger.link
        job = firmware.FirmwareJob.of(payload, payload, rich=False)

        async def notify(status: str) -> None:
            await link.send_or_log("FirmwareStatusNotification", {"status": status})

        return Reply({}, then=lambda: firmware.run(charger, job, notify))

    async def on_SignedUpdateFirmware(self, payload: dict[str, Any]) -> Reply:
        """Security Whitepaper: statuses name the request."""
        message = "SignedFirmwareStatusNotification"
        return firmware.accept_with_request_id(self.charger, payload, message)

    async def on_SetChargingProfile(self, payload: dict[str, Any]) -> Reply:
        return self.set_profile(int(payload["connectorId"]), payload["csChargingProfiles"])

    def read_profile(self, evse: int, profile: dict[str, Any]) -> Profile:
        return profile_v16(evse, profile)

    def profile_transaction_id(self, tx: Transaction) -> str | None:
        return None if tx.remote_id is None else str(tx.remote_id)

    def composite_reply(self, evse: int, start: datetime, schedule: dict[str, Any]) -> Reply:
        at = format_timestamp(start)
        return Reply(
            {
                "status": "Accepted",
                "connectorId": evse,
                "scheduleStart": at,
                "chargingSchedule": {**schedule, "startSchedule": at},
            }
        )
