"""The charger page's diagnostics: a technician requests a log, the simulated charger
uploads it, the page lists it with a download link that works with the UI session; a
viewer may look but not ask; the request is in the audit trail."""

from __future__ import annotations

import asyncio

from edge.daemon import EdgeDaemon
from edge.services.users import audit_entries
from sim.charger import SimCharger
from sim.charger.log_upload import LogUploading
from tests.edge.ui.conftest import logged_in, sim_charger
from tests.polling import eventually


async def test_a_technician_requests_a_log_and_downloads_it(daemon: EdgeDaemon) -> None:
    async with SimCharger(sim_charger(daemon, "CP-1", "2.0.1")) as cp:
        async with asyncio.timeout(10):
            await cp.wait_online()
        async with logged_in(daemon, "vic") as viewer:
            refused = await viewer.http.post(
                "/ui/chargers/CP-1/get-diagnostics",
                data={"log_type": "DiagnosticsLog"},
                headers={"X-CSRF-Token": viewer.csrf, "Accept": "application/json"},
            )
            assert refused.status_code == 403
        async with logged_in(daemon, "tess") as tech:
            page = await tech.http.get("/chargers/CP-1")
            assert 'action="/ui/chargers/CP-1/get-diagnostics"' in page.text
            asked = await tech.http.post(
                "/ui/chargers/CP-1/get-diagnostics",
                data={"log_type": "SecurityLog"},
                headers={"X-CSRF-Token": tech.csrf, "Accept": "application/json"},
            )
            assert asked.status_code == 200, asked.text
            assert asked.json()["answer"] == "Accepted"

            async def listed() -> bool:
                shown = await tech.http.get("/chargers/CP-1")
                return 'data-status="Uploaded"' in shown.text

            await eventually(listed, "the uploaded log on the charger page")
            page = await tech.http.get("/chargers/CP-1")
            assert 'href="/api/chargers/CP-1/logs/1/file"' in page.text
            download = await tech.http.get("/api/chargers/CP-1/logs/1/file")
            assert download.status_code == 200
            assert isinstance(cp.protocol, LogUploading)
            assert download.content == cp.protocol.log_uploads[0].content
            bad = await tech.http.post(
                "/ui/chargers/CP-1/get-diagnostics",
                data={"log_type": "AllLogs"},
                headers={"X-CSRF-Token": tech.csrf, "Accept": "application/json"},
            )
            assert bad.status_code == 422
    audit = await daemon.site.store.read(lambda c: audit_entries(c, 10))
    assert [(a["username"], a["action"], a["outcome"]) for a in audit] == [
        ("tess", "get-diagnostics", "Accepted")
    ]
