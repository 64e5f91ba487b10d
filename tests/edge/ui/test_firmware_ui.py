"""The UI's firmware page: a campaign over a 1.6 and a 2.0.1 charger by a technician, the
states shown on the page and the charger page, the audit trail, and who may send it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from edge.daemon import EdgeDaemon
from sim.charger import SimCharger
from tests.edge.firmware_server import IMAGE, VERSION, FirmwareServer, serving
from tests.edge.ui.conftest import logged_in, sim_charger
from tests.polling import eventually

JSON = {"Accept": "application/json"}
FORM = {**JSON, "Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def firmware_server(tmp_path: Path) -> Iterator[FirmwareServer]:
    with serving({"evpark-2.1.bin": IMAGE}, tmp_path / "www") as server:
        yield server


async def test_a_technicians_campaign_updates_both_chargers(
    daemon: EdgeDaemon, firmware_server: FirmwareServer
) -> None:
    async with (
        SimCharger(sim_charger(daemon, "CP-1", "1.6")) as cp1,
        SimCharger(sim_charger(daemon, "CP-2", "2.0.1")) as cp2,
        logged_in(daemon, "tess") as tech,
    ):
        async with asyncio.timeout(10):
            await cp1.wait_online()
            await cp2.wait_online()
        page = await tech.http.get("/firmware?charger=CP-2")
        assert page.status_code == 200
        assert 'value="CP-2" checked' in page.text
        assert 'action="/ui/firmware/campaign"' in page.text
        form = {"csrf_token": tech.csrf, "location": firmware_server.url(), "retries": "1"}
        nobody = await tech.http.post("/ui/firmware/campaign", data=form, headers=JSON)
        assert nobody.status_code == 422
        bad = await tech.http.post(
            "/ui/firmware/campaign",
            content=urlencode([*form.items(), ("charger", "CP-1"), ("location", "file:///x")]),
            headers=FORM,
        )
        assert bad.status_code == 422, bad.text
        assert "location" in bad.json()["message"]
        sent = await tech.http.post(
            "/ui/firmware/campaign",
            content=urlencode([*form.items(), ("charger", "CP-1"), ("charger", "CP-2")]),
            headers=FORM,
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["ok"] is True
        answers = sent.json()["detail"]["chargers"]
        assert {c: a["status"] for c, a in answers.items()} == {
            "CP-1": "Accepted",
            "CP-2": "Accepted",
        }

        async def both_installed() -> bool:
            table = await tech.http.get("/firmware?fragment=table")
            return table.text.count('data-firmware-state="installed"') == 2

        await eventually(both_installed, "both chargers show the installed firmware", 20)
        detail = await tech.http.get("/chargers/CP-2?fragment=status")
        assert 'data-firmware-state="installed"' in detail.text
        assert VERSION in detail.text
        audit = await tech.http.get("/events")
        assert "update-firmware" in audit.text
        assert "2/2 accepted" in audit.text


async def test_a_viewer_sees_the_page_but_cannot_send(
    daemon: EdgeDaemon, firmware_server: FirmwareServer
) -> None:
    async with logged_in(daemon, "vic") as viewer:
        page = await viewer.http.get("/firmware")
        assert page.status_code == 200
        assert "/ui/firmware/campaign" not in page.text
        refused = await viewer.http.post(
            "/ui/firmware/campaign",
            data={"csrf_token": viewer.csrf, "charger": "CP-1", "location": firmware_server.url()},
            headers=JSON,
        )
        assert refused.status_code == 403
    assert firmware_server.asked == []
