"""OCPP 2.0.1 answers of the simulated charging station to the CSMS's calls.

Each ``on_<Action>`` answers at once; what the station does about it (stop a session,
reset, send a report) runs after the answer has been sent (``Reply.then``), as a real
station would. The messages it sends are built in :mod:`sim.charger.v201.messages`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from common.timestamps import format_timestamp, parse_timestamp
from sim.charger.model import Reservation
from sim.charger.offline_queue import QueuedMessage
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


class Charger201(Messages201):
    """A 2.0.1 station: its messages, and its answers to the CSMS."""

    async def on_RequestStartTransaction(self, payload: dict[str, Any]) -> Reply:
        charger = self.charger
        tag = str(payload["idToken"]["idToken"])
        evse = payload.get("evseId") or charger.free_connector(tag)
        if not charger.online or evse is None or not self.known(evse):
            return Reply({"status": "Rejected"})
        if not self.can_start(charger.connectors[evse], tag):
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
        tx = self.find_transaction(str(payload["transactionId"]))
        if tx is None:
            return Reply({"status": "Rejected"})
        return Reply(
            {"status": "Accepted"}, then=lambda: self.stop_transaction(tx.evse, tx.key, "Remote")
        )

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
        if evse is not None and not self.known(evse):
            return Reply({"status": "Rejected"})
        if what not in TRIGGERED_MESSAGES:
            return Reply({"status": "NotImplemented"})
        charger = self.charger
        link = charger.link
        targets = [evse] if evse else list(charger.connectors)

        async def send() -> None:
            now = charger.clock.now()
            if what == "BootNotification":
                if not link.online:
                    link.trigger_boot()
                    return
                await link.send_or_log("BootNotification", self.boot_request("Triggered"))
            elif what == "Heartbeat":
                await link.send_or_log("Heartbeat", {})
            elif what == "FirmwareStatusNotification":
                await link.send_or_log("FirmwareStatusNotification", {"status": "Idle"})
            elif what == "LogStatusNotification":
                await link.send_or_log("LogStatusNotification", {"status": "Idle"})
            elif what == "StatusNotification":
                for n in targets:
                    connector = charger.connectors[n]
                    request = self.status_requests(connector, self.wire_status(connector), now)[0]
                    await link.send_or_log(*request)
            elif what == "MeterValues":
                for n in targets:
                    meter = charger.connectors[n].meter
                    values = meter_value(
                        now,
                        meter.sample(),
                        self.settings.measurands(),
                        "Trigger",
                        meter.offered_w(),
                    )
                    await link.send_or_log("MeterValues", {"evseId": n, "meterValue": values})
            else:  # TransactionEvent: of each running transaction, through the queue
                for n in targets:
                    meter = charger.connectors[n].meter
                    tx = charger.connectors[n].transaction
                    if tx is not None:
                        values = meter_value(
                            now,
                            meter.sample(),
                            self.settings.measurands(),
                            "Trigger",
                            meter.offered_w(),
                        )
                        event = self._event("Updated", tx, "Trigger", now, False, values)
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
                await charger.link.call("NotifyReport", request)

        return Reply({"status": "Accepted"}, then=report)

    async def on_ReserveNow(self, payload: dict[str, Any]) -> Reply:
        charger = self.charger
        tag = str(payload["idToken"]["idToken"])
        evse = payload.get("evseId") or charger.free_connector(tag)
        if evse is None:
            return Reply({"status": "Occupied"})
        if not self.known(evse):
            return Reply({"status": "Rejected"})
        connector = charger.connectors[evse]
        reservation_id = int(payload["id"])
        status = self.reserve_status(connector, reservation_id)
        if status != "Accepted":
            return Reply({"status": status})
        expires_at = parse_timestamp(payload["expiryDateTime"], naive_is_utc=True)
        connector.reservation = Reservation(reservation_id, tag, expires_at)
        return Reply({"status": "Accepted"}, then=partial(charger.publish_change, connector))

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

    async def on_DataTransfer(self, payload: dict[str, Any]) -> Reply:
        refusal = self.data_transfer_refusal(payload)
        if refusal is not None:
            return Reply({"status": refusal})
        if "data" in payload:
            return Reply({"status": "Accepted", "data": payload["data"]})
        return Reply({"status": "Accepted"})

    async def on_SetChargingProfile(self, payload: dict[str, Any]) -> Reply:
        evse = int(payload["evseId"])
        if evse != 0 and not self.known(evse):
            return Reply({"status": "Rejected"})
        self._apply_profile(evse, payload["chargingProfile"])
        return Reply({"status": "Accepted"})

    def _apply_profile(self, evse: int, profile: dict[str, Any]) -> None:
        schedules = profile.get("chargingSchedule") or []
        if schedules and schedules[0].get("chargingSchedulePeriod"):
            schedule = schedules[0]
            limit = float(schedule["chargingSchedulePeriod"][0]["limit"])
            self.limit_power(evse, limit, schedule["chargingRateUnit"])
