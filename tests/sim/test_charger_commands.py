"""The simulated chargers' answers to the central system's calls, per version: each
answer schema-valid, and what the charger does after it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sim.charger import SimCharger
from tests.sim.csms import WAIT, MiniCsms, config, now


async def test_16_commands(csms: MiniCsms) -> None:
    async with SimCharger(config(csms, "1.6", connectors=2)) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        cp = charger.id
        answer = await csms.result(cp, "GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]})
        assert answer["configurationKey"] == [
            {"key": "HeartbeatInterval", "readonly": False, "value": "1"}
        ]
        assert answer["unknownKey"] == ["Nope"]
        everything = await csms.result(cp, "GetConfiguration", {})
        keys = {k["key"] for k in everything["configurationKey"]}
        assert {"MeterValueSampleInterval", "NumberOfConnectors"} <= keys
        assert "AuthorizationKey" not in keys  # write-only
        change = {"key": "MeterValueSampleInterval", "value": "30"}
        assert await csms.result(cp, "ChangeConfiguration", change) == {"status": "Accepted"}
        assert charger.protocol.settings.meter_interval() == 30.0
        for key, value, status in [
            ("NumberOfConnectors", "4", "Rejected"),
            ("MeterValueSampleInterval", "soon", "Rejected"),
            ("MeterValuesSampledData", "Energy.Active.Import.Register,Nonsense", "Rejected"),
            ("NoSuchKey", "1", "NotSupported"),
        ]:
            answer = await csms.result(cp, "ChangeConfiguration", {"key": key, "value": value})
            assert answer == {"status": status}, key
        expiry = datetime.now(UTC).replace(year=2099).isoformat()
        reserve = {
            "connectorId": 2,
            "expiryDate": expiry,
            "idTag": "DEMO-TAG-3",
            "reservationId": 7,
        }
        assert await csms.result(cp, "ReserveNow", reserve) == {"status": "Accepted"}
        statuses = await csms.wait_for(cp, "StatusNotification", 4)
        assert statuses[-1].payload == {
            **statuses[-1].payload,
            "connectorId": 2,
            "status": "Reserved",
        }
        assert await csms.result(cp, "CancelReservation", {"reservationId": 7}) == {
            "status": "Accepted"
        }
        assert await csms.result(cp, "CancelReservation", {"reservationId": 7}) == {
            "status": "Rejected"
        }
        local_list = {
            "listVersion": 3,
            "updateType": "Full",
            "localAuthorizationList": [{"idTag": "LOCAL-1", "idTagInfo": {"status": "Accepted"}}],
        }
        assert await csms.result(cp, "SendLocalList", local_list) == {"status": "Accepted"}
        assert await csms.result(cp, "GetLocalListVersion", {}) == {"listVersion": 3}
        assert await csms.result(cp, "ClearCache", {}) == {"status": "Accepted"}
        transfer = {"vendorId": "evpark", "messageId": "echo", "data": "hi"}
        assert await csms.result(cp, "DataTransfer", transfer) == {
            "status": "Accepted",
            "data": "hi",
        }
        assert (await csms.result(cp, "DataTransfer", {"vendorId": "other"}))[
            "status"
        ] == "UnknownVendorId"
        assert await csms.result(cp, "UnlockConnector", {"connectorId": 9}) == {
            "status": "NotSupported"
        }
        assert await csms.result(
            cp, "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}
        ) == {"status": "Accepted"}
        statuses = await csms.wait_for(cp, "StatusNotification", 6)
        assert [(s.payload["connectorId"], s.payload["status"]) for s in statuses[3:]] == [
            (2, "Reserved"),
            (2, "Available"),
            (1, "Unavailable"),
        ]
        trigger = {"requestedMessage": "DiagnosticsStatusNotification"}
        assert await csms.result(cp, "TriggerMessage", trigger) == {"status": "Accepted"}
        await csms.wait_for(cp, "DiagnosticsStatusNotification")
        # no FTP client in the simulator: the download fails at once (the real download,
        # install and reboot are in tests/edge/ocpp/test_firmware.py)
        await csms.result(
            cp, "UpdateFirmware", {"location": "ftp://fw.example/1.bin", "retrieveDate": now()}
        )
        firmware = await csms.wait_for(cp, "FirmwareStatusNotification", 2)
        assert [f.payload for f in firmware] == [
            {"status": "Downloading"},
            {"status": "DownloadFailed"},
        ]
        # Protocol errors: an unknown action, a malformed payload.
        assert (await csms.call(cp, "Teleport", {}))[2] == "NotImplemented"
        assert (await csms.call(cp, "Reset", {"type": "Sideways"}))[2] == "FormationViolation"
        assert await csms.result(cp, "Reset", {"type": "Soft"}) == {"status": "Accepted"}
        await csms.wait_for(cp, "BootNotification", 2)
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        assert charger.boot_count == 2


async def test_201_commands_report_and_fault(csms: MiniCsms) -> None:
    async with SimCharger(config(csms, "2.0.1")) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        cp = charger.id
        heartbeat = {
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "HeartbeatInterval"},
        }
        answer = await csms.result(
            cp,
            "GetVariables",
            {
                "getVariableData": [
                    heartbeat,
                    {"component": {"name": "Nope"}, "variable": {"name": "X"}},
                ]
            },
        )
        assert [r["attributeStatus"] for r in answer["getVariableResult"]] == [
            "Accepted",
            "UnknownComponent",
        ]
        assert answer["getVariableResult"][0]["attributeValue"] == "1"
        interval = {
            "component": {"name": "SampledDataCtrlr"},
            "variable": {"name": "TxUpdatedInterval"},
        }
        answer = await csms.result(
            cp,
            "SetVariables",
            {
                "setVariableData": [
                    {**interval, "attributeValue": "15"},
                    {**heartbeat, "attributeValue": "-3"},
                ]
            },
        )
        assert [r["attributeStatus"] for r in answer["setVariableResult"]] == [
            "Accepted",
            "Rejected",
        ]
        assert charger.protocol.settings.meter_interval() == 15.0
        assert await csms.result(
            cp, "GetBaseReport", {"requestId": 5, "reportBase": "FullInventory"}
        ) == {"status": "Accepted"}
        reports = await csms.wait_for(cp, "NotifyReport", 2)
        while reports[-1].payload["tbc"]:
            reports = await csms.wait_for(cp, "NotifyReport", len(reports) + 1)
        assert [r.payload["seqNo"] for r in reports] == list(range(len(reports)))
        assert all(r.payload["requestId"] == 5 for r in reports)
        await charger.fault(1, "GroundFailure")
        event = (await csms.wait_for(cp, "NotifyEvent"))[0].payload
        assert event["eventData"][0]["variable"] == {"name": "Problem"}
        assert csms.of(cp, "StatusNotification")[-1].payload["connectorStatus"] == "Faulted"
        await charger.clear_fault(1)
        await csms.wait_for(cp, "NotifyEvent", 2)
        unlock = await csms.result(cp, "UnlockConnector", {"evseId": 1, "connectorId": 1})
        assert unlock == {"status": "Unlocked"}
        trigger = {"requestedMessage": "MeterValues", "evse": {"id": 1}}
        assert await csms.result(cp, "TriggerMessage", trigger) == {"status": "Accepted"}
        await csms.wait_for(cp, "MeterValues")
        local_list = {
            "versionNumber": 2,
            "updateType": "Full",
            "localAuthorizationList": [
                {
                    "idToken": {"idToken": "LOCAL-1", "type": "ISO14443"},
                    "idTokenInfo": {"status": "Accepted"},
                }
            ],
        }
        assert await csms.result(cp, "SendLocalList", local_list) == {"status": "Accepted"}
        assert await csms.result(cp, "GetLocalListVersion", {}) == {"versionNumber": 2}
        assert (await csms.call(cp, "Reset", {"type": "Later"}))[2] == "FormatViolation"
        assert await csms.result(cp, "Reset", {"type": "Immediate"}) == {"status": "Accepted"}
        boots = await csms.wait_for(cp, "BootNotification", 2)
        assert boots[1].payload["reason"] == "RemoteReset"
