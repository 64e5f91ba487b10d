"""The web UI in a real Chromium against a running edge with simulated chargers and real
MQTT sensors: logging in, live changes, actions with the charger's answer, roles, a phone
screen and the keyboard. Each page is saved as a screenshot in artifacts/screenshots/."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Dialog, Page, expect

from edge.daemon import EdgeDaemon
from sim.charger import SimCharger
from tests.edge.ui.conftest import base_url, browser_login, screenshot, sim_charger
from tests.mosquitto import Mosquitto, mosquitto_pub

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


async def sensor(broker: Mosquitto, sensor_id: str, payload: str) -> None:
    await mosquitto_pub(broker, f"evpark/test-site/sensors/{sensor_id}/state", payload, retain=True)


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


async def new_page(browser: Browser, viewport: dict[str, int] = DESKTOP) -> Page:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    page.on("dialog", accept)
    return page


async def test_charger_and_slot_changes_appear_live(
    daemon: EdgeDaemon, broker: Mosquitto, browser: Browser
) -> None:
    page = await new_page(browser)
    await browser_login(page, daemon, "tess")
    cp1 = page.locator('#chargers [data-charger="CP-1"]')
    await expect(cp1).to_have_attribute("data-state", "never_connected")
    b1 = page.locator("#slot-B1")
    await expect(b1).to_have_attribute("data-state", "unknown")

    async with SimCharger(sim_charger(daemon, "CP-1", "1.6")) as charger:
        await charger.wait_online()
        await expect(cp1).to_have_attribute("data-state", "available")
        await expect(page.locator('#alerts [data-subject="CP-1"]')).to_have_count(0)

        await sensor(broker, "S-B1", '{"occupied": true, "battery": 81, "rssi": -70}')
        await expect(b1).to_have_attribute("data-state", "occupied")
        await expect(b1).to_contain_text("occupied")
        await sensor(broker, "S-B2", "0")
        await sensor(broker, "S-C1", "0")
        await expect(page.locator("#slot-B2")).to_have_attribute("data-state", "free")
        await expect(page.locator('[data-free-type="standard"] [data-free]')).to_have_text("1")

        # a technician's action: take a slot out of service, answered in the status region
        await page.get_by_label("Slot", exact=True).select_option("B3")
        await page.get_by_label("Reason for out of service").fill("line painting")
        await page.get_by_role("button", name="Take out of service").click()
        await expect(page.locator("#announcer")).to_contain_text("now out_of_service")
        await expect(page.locator("#slot-B3")).to_have_attribute("data-state", "out_of_service")
        await page.get_by_label("Slot", exact=True).select_option("C1")
        await page.get_by_role("button", name="Reserve", exact=True).click()
        await expect(page.locator("#slot-C1")).to_have_attribute("data-state", "reserved")

        # a car arrives in the EV slot and charges: power shows up, live and in the chart
        await sensor(broker, "S-A1", '{"occupied": true, "battery": 64, "rssi": -77}')
        await charger.plug_in(1, soc=40.0)
        await charger.start(1, "TAG-OK")
        await charger.send_meter_values(1, n=3)
        await expect(page.locator("#slot-A1")).to_contain_text("charging")
        await expect(page.locator("[data-power-now]")).to_have_text("11.0 kW")
        await page.reload()
        await expect(page.locator("#power figcaption")).to_contain_text("Now 11.0 kW")
        await expect(page.locator("#live-status")).to_have_text("live")
        await screenshot(page, "overview")
        await charger.stop(1)

    await expect(cp1).to_have_attribute("data-state", "offline")
    await expect(page.locator('#alerts [data-subject="CP-1"]')).to_contain_text("offline")


async def test_stop_a_session_from_the_ui_and_see_the_chargers_answer(
    daemon: EdgeDaemon, broker: Mosquitto, browser: Browser
) -> None:
    async with SimCharger(sim_charger(daemon, "CP-2", "2.0.1")) as charger:
        await charger.wait_online()
        await sensor(broker, "S-A2", "1")
        await charger.plug_in(1, soc=35.0)
        await charger.start(1, "TAG-OK")
        await charger.send_meter_values(1, n=2)

        page = await new_page(browser)
        await browser_login(page, daemon, "tess")
        await page.goto(base_url(daemon) + "/chargers/CP-2")
        await expect(page.locator("#live-status")).to_have_text("live")
        status = page.locator("#charger-status")
        await expect(status.locator("[data-charger-state]")).to_have_attribute(
            "data-charger-state", "charging"
        )
        rows = status.locator("tr[data-session]")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("TAG-OK")
        await expect(page.locator("#charger-log")).to_contain_text("TransactionEvent")
        await screenshot(page, "charger")

        await rows.first.get_by_role("button", name=re.compile("^Stop")).click()
        await expect(page.locator("#announcer")).to_contain_text(
            "CP-2: remote-stop: the charger answered Accepted"
        )
        await expect(rows).to_have_count(0)
        await expect(status).to_contain_text("No active sessions.")

        await page.goto(base_url(daemon) + "/sessions?charger=CP-2")
        await expect(page.get_by_role("cell", name="Remote", exact=False)).to_have_count(1)
        await screenshot(page, "sessions")


async def test_a_viewer_sees_the_site_but_cannot_act(
    daemon: EdgeDaemon, broker: Mosquitto, browser: Browser
) -> None:
    async with SimCharger(sim_charger(daemon, "CP-1", "1.6")) as charger:
        await charger.wait_online()
        page = await new_page(browser)
        await browser_login(page, daemon, "vic")
        await expect(page.locator('#chargers [data-charger="CP-1"]')).to_have_attribute(
            "data-state", "available"
        )
        await expect(page.get_by_role("heading", name="Manage a slot")).to_have_count(0)
        await page.goto(base_url(daemon) + "/chargers/CP-1")
        await expect(page.get_by_role("heading", name="Charger CP-1")).to_be_visible()
        await expect(page.get_by_role("button", name="Reset")).to_have_count(0)
        status = await page.evaluate(
            """async () => (await fetch('/ui/chargers/CP-1/reset', {
                method: 'POST',
                headers: {'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content,
                          'Accept': 'application/json'},
                body: new URLSearchParams({type: 'soft'}),
            })).status"""
        )
        assert status == 403
        assert not [c for c in charger.received if c.action == "Reset"]
        await expect(page.get_by_role("link", name="Users")).to_have_count(0)


async def test_every_page_on_a_phone_with_labels_and_keyboard(
    daemon: EdgeDaemon, broker: Mosquitto, browser: Browser
) -> None:
    await sensor(broker, "S-B1", '{"occupied": true, "battery": 12, "rssi": -90}')
    async with SimCharger(sim_charger(daemon, "CP-1", "1.6")) as charger:
        await charger.wait_online()
        page = await new_page(browser, PHONE)
        await browser_login(page, daemon, "ada")
        for path, name, heading in [
            ("/", "phone-overview", "Slots"),
            ("/chargers", "phone-chargers", "Chargers"),
            ("/chargers/CP-1", "phone-charger", "Charger CP-1"),
            ("/sessions", "phone-sessions", "Sessions"),
            ("/sensors", "phone-sensors", "Sensors"),
            ("/power", "phone-power", "Power"),
            ("/events", "phone-events", "Event log"),
            ("/users", "phone-users", "Users"),
        ]:
            await page.goto(base_url(daemon) + path)
            await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
            unlabelled = await page.evaluate(
                """() => Array.from(document.querySelectorAll('input, select, textarea'))
                    .filter((el) => el.type !== 'hidden' && el.labels.length === 0
                                    && !el.closest('label') && !el.getAttribute('aria-label'))
                    .map((el) => el.name)"""
            )
            assert unlabelled == [], f"{path}: inputs without a label: {unlabelled}"
            too_wide = await page.evaluate(
                """() => document.documentElement.scrollWidth <= window.innerWidth ? [] :
                    Array.from(document.querySelectorAll('body *'))
                        .filter((el) => el.getBoundingClientRect().right > window.innerWidth
                                        && !el.closest('.scroll'))
                        .map((el) => el.tagName + '.' + el.className)"""
            )
            assert too_wide == [], f"{path} scrolls sideways on a phone: {too_wide}"
            await screenshot(page, name)
        await expect(page.locator("#sensor-table, #main")).not_to_have_count(0)

        await page.goto(base_url(daemon) + "/sensors")
        row = page.locator('tr[data-sensor="S-B1"]')
        await expect(row).to_contain_text("12 %")
        await expect(row).to_contain_text("-90 dBm")

        # the keyboard: the first Tab reaches the skip link, which lands on the content
        await page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        await expect(skip).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.locator("#main")).to_be_focused()

    login = await new_page(browser)
    await login.goto(base_url(daemon) + "/login")
    await screenshot(login, "login")


async def test_the_api_docs_render_from_the_edge_alone(
    daemon: EdgeDaemon, browser: Browser
) -> None:
    """Swagger UI draws the edge's API with nothing loaded from anywhere else."""
    page = await new_page(browser)
    elsewhere: list[str] = []
    page.on(
        "request", lambda r: None if r.url.startswith(base_url(daemon)) else elsewhere.append(r.url)
    )
    await page.goto(base_url(daemon) + "/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("evpark edge")
    await expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert elsewhere == []
