"""OCPP 2.0.1 answers of the simulated charging station to the CSMS's calls.

Each ``on_<Action>`` answers at once; what the station does about it (stop a session,
reset, send a report) runs after the answer has been sent (``Reply.then``), as a real
station would. The messages it sends are built in :mod:`sim.charger.v201.messages`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.timestamps import format_timestamp
from sim.charger import firmware
from sim.charger.log_upload import LogUploading
from sim.charger.model import Transaction
from sim.charger.offline_queue import QueuedMessage
from sim.charger.profiles import Profile, profile_v201
from sim.charger.rpc import Reply
from sim.charger.v201.messages import Messages201, meter_value

# NotifyReport rows per message (the rest follows with `tbc`).
REPORT_CHUNK = 20
TRIGGERED_MESSAGES = frozenset(
    {
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "MeterValues",
        "TransactionEvent",
        "FirmwareStatusNotification",
        "LogStatusNotification",
    }
)


class Charger201(Messages201, LogUploading):
    """A 2.0.1 station: its messages, and its answers to the CSMS."""

    async def on_RequestStartTransaction(self, payload: dict[str, Any]) -> Reply:
        tag = str(payload["idToken"]["idToken"])
        remote_start_id = int(payload["remoteStartId"])
        profile = payload.get("chargingProfile")
        return self.remote_start(payload.get("evseId"), tag, remote_start_id, profile)

    async def on_RequestStopTransaction(self, payload: dict[str, Any]) -> Reply:
        return self.remote_stop(self.find_transaction(str(payload["transactionId"])))

    async def on_GetTransactionStatus(self, payload: dict[str, Any]) -> Reply:
        transaction_id = payload.get("transactionId")
        queued = [m for m in self.charger.queue.items() if transaction_id in (None, m.tx_key)]
        answer: dict[str, Any] = {"messagesInQueue": bool(queued)}
        if transaction_id is not None:
            answer["ongoingIndicator"] = self.find_transaction(str(transaction_id)) is not None
        return Reply(answer)

    async def on_Reset(self, payload: dict[str, Any]) -> Reply:
        charger = self.charger
        evse = payload.get("evseId")
        if evse is not None:
            if not self.known(evse):
                return Reply({"status": "Rejected"})
            tx = charger.connectors[evse].transaction
            if tx is None:
                return Reply({"status": "Accepted"})
            if payload["type"] == "OnIdle":
                return Reply({"status": "Scheduled"})
            return Reply(
                {"status": "Accepted"},
                then=lambda: self.stop_transaction(evse, tx.key, "HardReset"),
            )
        busy = any(c.transaction is not None for c in charger.connectors.values())
        if payload["type"] == "OnIdle" and busy:
            self.reset_when_idle = True
            return Reply({"status": "Scheduled"})
        return Reply(
            {"status": "Accepted"}, then=lambda: charger.reboot("HardReset", "RemoteReset")
        )

    async def on_UnlockConnector(self, payload: dict[str, Any]) -> Reply:
        evse = int(payload["evseId"])
        if not self.known(evse) or payload["connectorId"] != 1:
            return Reply({"status": "UnknownConnector"})
        if self.charger.connectors[evse].transaction is not None:
            return Reply({"status": "OngoingAuthorizedTransaction"})
        return Reply({"status": "Unlocked"})

    async def on_ChangeAvailability(self, payload: dict[str, Any]) -> Reply:
        evse = payload.get("evse", {}).get("id")
        if evse is not None and evse != 0 and not self.known(evse):
            return Reply({"status": "Rejected"})
        operative = payload["operationalStatus"] == "Operative"
        status = self.availability(evse, operative)
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
        if evse is not None and not self.known(evse):
            return Reply({"status": "Rejected"})
        if what not in TRIGGERED_MESSAGES:
            return Reply({"status": "NotImplemented"})
        charger = self.charger
        link = charger.link
        targets = [evse] if evse else list(charger.connectors)

        async def send() -> None:
            now = charger.clock.now()
            if await self.send_triggered(what):
                return
            if what == "LogStatusNotification":
                await link.send_or_log("LogStatusNotification", {"status": "Idle"})
            elif what == "StatusNotification":
                for n in targets:
                    connector = charger.connectors[n]
                    request = self.status_requests(connector, self.wire_status(connector), now)[0]
                    await link.send_or_log(*request)
            elif what == "MeterValues":
                for n in targets:
                    values = self._triggered_values(n, now)
                    await link.send_or_log("MeterValues", {"evseId": n, "meterValue": values})
            else:  # TransactionEvent: of each running transaction, through the queue
                for n in targets:
                    tx = charger.connectors[n].transaction
                    if tx is not None:
                        values = self._triggered_values(n, now)
                        event = self._event("Updated", tx, "Trigger", now, False, values)
                        await charger.enqueue([QueuedMessage("TransactionEvent", event, tx.key)])

        return Reply({"status": "Accepted"}, then=send)

    def _triggered_values(self, evse: int, now: datetime) -> list[dict[str, Any]]:
        meter = self.charger.connectors[evse].meter
        measurands = self.settings.measurands()
        return meter_value(now, meter.sample(), measurands, "Trigger", meter.offered_w())

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
                # The new password is used from the next connection on.
                self.charger.link.password = variable.value
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
                    "generatedAt": format_timestamp(charger.clock.now()),
                    "seqNo": seq_no,
                    "tbc": seq_no < len(chunks) - 1,
                    "reportData": [variable.report() for variable in chunk],
                }
                # sent while Pending too: a CSMS reads a station's configuration then
                await charger.link.call_asked("NotifyReport", request)

        return Reply({"status": "Accepted"}, then=report)

    async def on_ReserveNow(self, payload: dict[str, Any]) -> Reply:
        tag = str(payload["idToken"]["idToken"])
        evse = payload.get("evseId") or self.charger.free_connector(tag)
        if evse is None:
            return Reply({"status": "Occupied"})
        if not self.known(evse):
            return Reply({"status": "Rejected"})
        return self.reserve(evse, int(payload["id"]), tag, payload["expiryDateTime"])

    async def on_SendLocalList(self, payload: dict[str, Any]) -> Reply:
        entries = [
            (
                entry["idToken"]["idToken"],
                entry["idTokenInfo"]["status"] if "idTokenInfo" in entry else None,
            )
            for entry in payload.get("localAuthorizationList", [])
        ]
        status = self.update_local_list(
            int(payload["versionNumber"]), payload["updateType"], entries
        )
        if status == "Accepted":
            entries_now = str(len(self.charger.auth.local))
            self.model.set_value("LocalAuthListCtrlr", "Entries", entries_now)
        return Reply({"status": status})

    async def on_GetLocalListVersion(self, payload: dict[str, Any]) -> Reply:
        return Reply({"versionNumber": self.charger.auth.local_version})

    async def on_DataTransfer(self, payload: dict[str, Any]) -> Reply:
        refusal = self.data_transfer_refusal(payload)
        if refusal is not None:
            return Reply({"status": refusal})
        if "data" in payload:
            return Reply({"status": "Accepted", "data": payload["data"]})
        return Reply({"status": "Accepted"})

    async def on_UpdateFirmware(self, payload: dict[str, Any]) -> Reply:
        """Statuses name the request (sim.charger.firmware)."""
        return firmware.accept_with_request_id(self.charger, payload, "FirmwareStatusNotification")

    async def on_SetChargingProfile(self, payload: dict[str, Any]) -> Reply:
        return self.set_profile(int(payload["evseId"]), payload["chargingProfile"])

    def read_profile(self, evse: int, profile: dict[str, Any]) -> Profile:
        return profile_v201(evse, profile)

    def profile_transaction_id(self, tx: Transaction) -> str | None:
        return tx.key

    def composite_reply(self, evse: int, start: datetime, schedule: dict[str, Any]) -> Reply:
        return Reply(
            {
                "status": "Accepted",
                "schedule": {
                    "evseId": evse,
                    "scheduleStart": format_timestamp(start),
                    **schedule,
                },
            }
        )

    async def on_GetChargingProfiles(self, payload: dict[str, Any]) -> Reply:
        """The profiles matching the criteria, one ReportChargingProfiles per EVSE."""
        wanted = payload.get("chargingProfile", {})
        ids = wanted.get("chargingProfileId")
        found = [
            p
            for p in self.charger.profiles.profiles
            if payload.get("evseId") in (None, p.evse)
            and wanted.get("chargingProfilePurpose") in (None, p.purpose_name)
            and wanted.get("stackLevel") in (None, p.stack_level)
            and (not ids or p.id in ids)
        ]
        if not found:
            return Reply({"status": "NoProfiles"})
        evses = sorted({p.evse for p in found})
        link = self.charger.link

        async def report() -> None:
            for n, evse in enumerate(evses):
                await link.send_or_log(
                    "ReportChargingProfiles",
                    {
                        "requestId": payload["requestId"],
                        "chargingLimitSource": "CSO",
                        "evseId": evse,
                        "chargingProfile": [p.raw for p in found if p.evse == evse],
                        "tbc": n < len(evses) - 1,
                    },
                )

        return Reply({"status": "Accepted"}, then=report)
