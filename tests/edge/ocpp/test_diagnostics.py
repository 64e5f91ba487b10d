"""Issue 13 point 3 end to end: a technician asks a simulated charger of either version for
its diagnostics or security log through the local API, the charger uploads it to the
edge, and its statuses and the file show in the charger's logs, ready to download."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from sim.charger import SimCharger
from sim.charger.log_upload import LogUploading
from tests.edge.conftest import sim_charger_config
from tests.edge.site_commands import wire
from tests.polling import eventually


def uploads_of(cp: SimCharger) -> LogUploading:
    assert isinstance(cp.protocol, LogUploading)
    return cp.protocol


async def latest_request(api: httpx.AsyncClient, charger: str) -> dict[str, Any]:
    answer = await api.get(f"/api/chargers/{charger}/logs")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()[0]
    return found


@pytest.mark.parametrize("log_type", ["DiagnosticsLog", "SecurityLog"])
async def test_a_log_is_requested_uploaded_listed_and_downloaded(
    edge: EdgeDaemon, version: Version, log_type: str
) -> None:
    base = f"http://127.0.0.1:{edge.http_port}"
    async with (
        SimCharger(sim_charger_config(edge, "CP-LOG", wire(version))) as cp,
        httpx.AsyncClient(base_url=base, timeout=10) as api,
    ):
        async with asyncio.timeout(10):
            await cp.wait_online()
        asked = await api.post(
            "/api/chargers/CP-LOG/get-diagnostics",
            json={"log_type": log_type, "since": "2026-01-01T00:00:00Z", "retries": 1},
        )
        assert asked.status_code == 200, asked.text
        answer = asked.json()
        assert answer["status"] == "Accepted"
        assert answer["file_name"].endswith(".log")
        call = await cp.wait_for_command(
            "GetDiagnostics"
            if version is Version.V16 and log_type == "DiagnosticsLog"
            else "GetLog"
        )
        location = call.payload.get("location") or call.payload["log"]["remoteLocation"]
        assert location.startswith(f"{base}/ocpp-uploads/")

        async def uploaded() -> bool:
            return (await latest_request(api, "CP-LOG"))["status"] == "Uploaded"

        await eventually(uploaded, "the charger's Uploaded status recorded")
        request = await latest_request(api, "CP-LOG")
        assert request["id"] == answer["request_id"]
        assert request["log_type"] == log_type
        assert [s["status"] for s in request["statuses"]] == ["Uploading", "Uploaded"]
        assert request["open"] is False
        sent = uploads_of(cp).log_uploads
        assert [u.ok for u in sent] == [True]
        [stored] = request["files"]
        assert stored["size"] == len(sent[0].content)
        assert stored["name"] == f"{request['id']}-{answer['file_name']}"

        download = await api.get(f"/api/chargers/CP-LOG/logs/{request['id']}/file")
        assert download.status_code == 200
        assert download.content == sent[0].content
        assert download.headers["content-type"] == "application/octet-stream"
        assert download.headers["content-disposition"].startswith("attachment;")
        assert download.headers["x-content-type-options"] == "nosniff"
        again = await api.put(location + "/again.log", content=b"x")
        assert again.status_code == 410  # one file per request


async def test_an_unreachable_location_ends_in_upload_failed(
    config_factory: Any, version: Version
) -> None:
    config: SiteConfig = config_factory(http={"public_url": "http://127.0.0.1:9"})
    async with (
        EdgeDaemon(config) as edge,
        SimCharger(sim_charger_config(edge, "CP-LOG", wire(version))) as cp,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.http_port}", timeout=10) as api,
    ):
        async with asyncio.timeout(10):
            await cp.wait_online()
        asked = await api.post(
            "/api/chargers/CP-LOG/get-diagnostics", json={"retries": 1, "retry_interval": 0}
        )
        assert asked.status_code == 200, asked.text
        failed = "UploadFailed" if version is Version.V16 else "UploadFailure"

        async def failed_status() -> bool:
            return (await latest_request(api, "CP-LOG"))["status"] == failed

        await eventually(failed_status, "the charger's failure recorded")
        request = await latest_request(api, "CP-LOG")
        assert request["files"] == []
        assert [u.ok for u in uploads_of(cp).log_uploads] == [False]
        missing = await api.get(f"/api/chargers/CP-LOG/logs/{request['id']}/file")
        assert missing.status_code == 404


async def test_an_offline_charger_leaves_a_closed_request(edge: EdgeDaemon) -> None:
    base = f"http://127.0.0.1:{edge.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as api:
        async with SimCharger(sim_charger_config(edge, "CP-LOG", wire(Version.V16))) as cp:
            async with asyncio.timeout(10):
                await cp.wait_online()
        gone = await api.post("/api/chargers/CP-LOG/get-diagnostics", json={})
        assert gone.status_code == 409
        request = await latest_request(api, "CP-LOG")
        assert (request["answer"], request["open"]) == ("NotSent", False)
        unknown = await api.post("/api/chargers/NOPE/get-diagnostics", json={})
        assert unknown.status_code == 404
        bad = await api.post("/api/chargers/CP-LOG/get-diagnostics", json={"log_type": "AllLog"})
        assert bad.status_code == 422
