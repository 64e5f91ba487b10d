"""Issue 13 point 2 against a running daemon and simulated chargers of both versions: a
firmware update from the local API, downloaded for real from a local HTTP server,
installed, the charger rebooted into it; a missing file, signed updates, a campaign over
several chargers (one offline), central's ``update_firmware`` command, the state kept over
a restart, and bodies refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from sim.charger import SimCharger
from tests.edge.firmware_server import IMAGE, VERSION, FirmwareServer, serving
from tests.edge.ocpp.test_more_commands import charger, online
from tests.edge.site_commands import outbox, run_command
from tests.polling import eventually

SIGNATURE = "c2lnbmF0dXJl"
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"


@pytest.fixture
def firmware_server(tmp_path: Path) -> Iterator[FirmwareServer]:
    with serving({"evpark-2.1.bin": IMAGE}, tmp_path / "www") as server:
        yield server


async def post_update(api: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    """``body`` to the charger CP-FW's update-firmware."""
    return await api.post("/api/chargers/CP-FW/update-firmware", json=body)


def statuses(cp: SimCharger) -> list[str]:
    return [e.payload["status"] for e in cp.sent if "FirmwareStatusNotification" in e.action]


async def firmware_of(api: httpx.AsyncClient, charger_id: str) -> dict[str, Any]:
    found = await api.get(f"/api/chargers/{charger_id}")
    assert found.status_code == 200, found.text
    return found.json()  # type: ignore[no-any-return]


async def until_state(
    api: httpx.AsyncClient, charger_id: str, state: str, status: str | None = None
) -> dict[str, Any]:
    """The charger's update once it is in ``state`` (and its last status is ``status``:
    a reboot into the new version may mark it installed before the charger's Installed
    notification arrives)."""

    async def reached() -> bool:
        update = (await firmware_of(api, charger_id))["firmware_update"]
        return (
            update is not None and update["state"] == state and status in (None, update["status"])
        )

    await eventually(
        reached, f"{charger_id}'s firmware update is {state} ({status or 'any status'})", within=20
    )
    return (await firmware_of(api, charger_id))["firmware_update"]  # type: ignore[no-any-return]


async def test_update_downloads_installs_and_reboots_into_the_new_firmware(
    edge: EdgeDaemon, version: Version, api: httpx.AsyncClient, firmware_server: FirmwareServer
) -> None:
    async with charger(edge, "CP-FW", version) as cp:
        await online(cp)
        before = await firmware_of(api, "CP-FW")
        assert before["firmware"] == "sim-1.0"
        assert before["firmware_update"] is None
        sent = await post_update(
            api,
            {"location": firmware_server.url(), "retries": 2, "retry_interval": 1},
        )
        assert sent.status_code == 200, sent.text
        answer = sent.json()
        assert answer["status"] == "Accepted"
        assert answer["firmware_update"]["request_id"] == answer["request_id"]
        assert answer["firmware_update"]["from_version"] == "sim-1.0"
        update = await until_state(api, "CP-FW", "installed", "Installed")
        assert update["status"] == "Installed"
        assert update["to_version"] == VERSION
        assert update["location"] == firmware_server.url()
        assert (await firmware_of(api, "CP-FW"))["firmware"] == VERSION
        assert firmware_server.asked == ["/evpark-2.1.bin"]
        call = next(e for e in cp.received if "UpdateFirmware" in e.action)
        if version is Version.V16:
            assert call.action == "UpdateFirmware"
            assert set(call.payload) == {"location", "retrieveDate", "retries", "retryInterval"}
            assert statuses(cp) == ["Downloading", "Downloaded", "Installing", "Installed"]
        else:
            assert call.payload["requestId"] == answer["request_id"]
            assert call.payload["firmware"]["location"] == firmware_server.url()
            assert "signature" not in call.payload["firmware"]
            assert statuses(cp) == [
                "Downloading", "Downloaded", "Installing", "InstallRebooting", "Installed",
            ]  # fmt: skip
        assert cp.boot_count == 2
    events = [e.data for e in await outbox(edge) if e.type == "charger.firmware_status"]
    assert [e["status"] for e in events][-1] == "Installed"  # type: ignore[index]


async def test_a_missing_file_fails_after_the_retries(
    edge: EdgeDaemon, version: Version, api: httpx.AsyncClient, firmware_server: FirmwareServer
) -> None:
    async with charger(edge, "CP-FW", version) as cp:
        await online(cp)
        sent = await post_update(
            api,
            {"location": firmware_server.url("nope.bin"), "retries": 1, "retry_interval": 0},
        )
        assert sent.json()["status"] == "Accepted", sent.text
        update = await until_state(api, "CP-FW", "failed")
        assert update["status"] == "DownloadFailed"
        assert firmware_server.asked == ["/nope.bin", "/nope.bin"]  # one retry
        assert statuses(cp) == ["Downloading", "DownloadFailed"]
        assert cp.boot_count == 1


async def test_signed_updates_verify_or_refuse_the_signature(
    edge: EdgeDaemon, version: Version, api: httpx.AsyncClient, firmware_server: FirmwareServer
) -> None:
    async with charger(edge, "CP-FW", version) as cp:
        await online(cp)
        if version is Version.V16:  # the Security Whitepaper wants both
            half = await post_update(
                api,
                {"location": firmware_server.url(), "signature": SIGNATURE},
            )
            assert half.status_code == 422, half.text
            assert "signing certificate" in half.json()["detail"]
            assert not any("Firmware" in e.action for e in cp.received)
        signed = {"signature": SIGNATURE, "signing_certificate": CERTIFICATE}
        sent = await post_update(
            api,
            {"location": firmware_server.url(), **signed},
        )
        assert sent.json()["status"] == "Accepted", sent.text
        first = sent.json()["request_id"]
        update = await until_state(api, "CP-FW", "installed")
        assert update["signed"] is True
        assert update["request_id"] == first
        call = next(e for e in cp.received if "UpdateFirmware" in e.action)
        expected = "SignedUpdateFirmware" if version is Version.V16 else "UpdateFirmware"
        assert call.action == expected
        assert call.payload["firmware"]["signature"] == SIGNATURE
        assert call.payload["firmware"]["signingCertificate"] == CERTIFICATE
        assert "SignatureVerified" in statuses(cp)
        sent_by = {e.action for e in cp.sent if "FirmwareStatus" in e.action}
        assert sent_by == {
            "SignedFirmwareStatusNotification"
            if version is Version.V16
            else "FirmwareStatusNotification"
        }
        refused = await post_update(
            api,
            {"location": firmware_server.url(), **signed, "signature": "invalid"},
        )
        assert refused.json()["request_id"] == first + 1  # a new request id per update
        update = await until_state(api, "CP-FW", "failed")
        assert update["status"] == "InvalidSignature"
        assert update["request_id"] == first + 1
        bad_certificate = {**signed, "signing_certificate": "invalid"}
        refused = await post_update(api, {"location": firmware_server.url(), **bad_certificate})
        assert refused.status_code == 200, refused.text
        assert refused.json()["status"] == "InvalidCertificate"
        assert refused.json()["firmware_update"] is None
        current = (await firmware_of(api, "CP-FW"))["firmware_update"]
        assert (current["request_id"], current["state"]) == (first + 1, "failed")
        history = await api.get("/api/chargers/CP-FW/firmware-updates")
        assert [(u["request_id"], u["state"]) for u in history.json()] == [
            (first + 1, "failed"),
            (first, "installed"),
        ]


async def test_a_campaign_over_both_versions_reports_the_offline_charger(
    edge: EdgeDaemon, api: httpx.AsyncClient, firmware_server: FirmwareServer
) -> None:
    async with charger(edge, "CP-GONE", Version.V16) as gone:
        await online(gone)
    async with (
        charger(edge, "CP-16", Version.V16) as cp16,
        charger(edge, "CP-201", Version.V201) as cp201,
    ):
        await online(cp16)
        await online(cp201)
        sent = await api.post(
            "/api/firmware/campaign",
            json={
                "chargers": ["CP-16", "CP-201", "CP-GONE", "CP-NONE", "CP-LOCKED"],
                "location": firmware_server.url(),
            },
        )
        assert sent.status_code == 200, sent.text
        answers = sent.json()["chargers"]
        assert {k: v["status"] for k, v in answers.items()} == {
            "CP-16": "Accepted",
            "CP-201": "Accepted",
            "CP-GONE": "offline",
            "CP-NONE": "unknown",
            "CP-LOCKED": "offline",
        }
        for charger_id in ("CP-16", "CP-201"):
            assert (await until_state(api, charger_id, "installed"))["to_version"] == VERSION
        assert (await firmware_of(api, "CP-GONE"))["firmware_update"] is None
        bad = await api.post("/api/firmware/campaign", json={"location": "gopher://x/fw"})
        assert bad.status_code == 422


async def test_centrals_update_firmware_command(
    edge: EdgeDaemon, api: httpx.AsyncClient, firmware_server: FirmwareServer
) -> None:
    async with charger(edge, "CP-201", Version.V201) as cp:
        await online(cp)
        done = await run_command(
            edge, "update_firmware", {"location": firmware_server.url(), "retries": 1}
        )
        assert done.status == "accepted", done.detail
        assert done.result["chargers"]["CP-201"]["status"] == "Accepted"
        await until_state(api, "CP-201", "installed")
        named = await run_command(
            edge, "update_firmware", {"chargers": ["CP-201", "CP-OFF"], "location": "x"}
        )
        assert named.status == "rejected"
        assert "location" in named.detail
    offline = await run_command(
        edge, "update_firmware", {"chargers": ["CP-201"], "location": firmware_server.url()}
    )
    assert offline.status == "failed"
    assert offline.result["chargers"]["CP-201"]["status"] == "offline"


async def test_the_state_survives_a_restart(
    config_factory: Callable[..., SiteConfig], firmware_server: FirmwareServer
) -> None:
    config = config_factory()
    async with EdgeDaemon(config) as edge:
        base = f"http://127.0.0.1:{edge.http_port}"
        async with (
            httpx.AsyncClient(base_url=base, timeout=15) as api,
            charger(edge, "CP-FW", Version.V201) as cp,
        ):
            await online(cp)
            sent = await post_update(
                api,
                {"location": firmware_server.url("missing.bin")},
            )
            assert sent.json()["status"] == "Accepted"
            before = await until_state(api, "CP-FW", "failed")
    async with EdgeDaemon(config) as edge:
        base = f"http://127.0.0.1:{edge.http_port}"
        async with httpx.AsyncClient(base_url=base, timeout=15) as api:
            assert (await firmware_of(api, "CP-FW"))["firmware_update"] == before
            async with charger(edge, "CP-FW", Version.V201) as cp:
                await online(cp)
                again = await post_update(api, {"location": firmware_server.url()})
                assert again.json()["request_id"] == before["request_id"] + 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"location": "file:///etc/passwd"},
        {"location": "http://"},
        {"location": "http://host/a b.bin"},
        {"location": "https://host/" + "x" * 600},
        {"location": "https://host/fw.bin", "retrieve_at": "2026-01-01T00:00:00"},
        {"location": "https://host/fw.bin", "retrieve_at": "tomorrow"},
        {"location": "https://host/fw.bin", "retries": 11},
        {"location": "https://host/fw.bin", "retry_interval": -1},
        {"location": "https://host/fw.bin", "signature": ""},
        {"location": "https://host/fw.bin", "retries": "many"},
    ],
)
async def test_bad_bodies_are_refused(
    edge: EdgeDaemon, api: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    async with charger(edge, "CP-FW", Version.V201) as cp:
        await online(cp)
        refused = await post_update(api, body)
        assert refused.status_code == 422, refused.text
        assert not any("Firmware" in e.action for e in cp.received)


async def test_unknown_and_offline_chargers(edge: EdgeDaemon, api: httpx.AsyncClient) -> None:
    body = {"location": "https://host/fw.bin"}
    unknown = await api.post("/api/chargers/CP-NONE/update-firmware", json=body)
    assert unknown.status_code == 404
    async with charger(edge, "CP-FW", Version.V16) as cp:
        await online(cp)
    offline = await post_update(api, body)
    assert offline.status_code == 409, offline.text


async def test_timed_retrieve_is_sent_as_asked(
    edge: EdgeDaemon, version: Version, api: httpx.AsyncClient, firmware_server: FirmwareServer
) -> None:
    async with charger(edge, "CP-FW", version) as cp:
        await online(cp)
        sent = await post_update(
            api,
            {"location": firmware_server.url(), "retrieve_at": "2020-05-01T12:00:00+02:00"},
        )
        assert sent.json()["firmware_update"]["retrieve_at"] == "2020-05-01T10:00:00.000Z"
        call = next(e for e in cp.received if "UpdateFirmware" in e.action)
        when = call.payload.get("retrieveDate") or call.payload["firmware"]["retrieveDateTime"]
        assert when.startswith("2020-05-01T10:00:00")
        await until_state(api, "CP-FW", "installed")
