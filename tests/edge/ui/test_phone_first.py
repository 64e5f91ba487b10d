"""The UI measured in Chromium at phone and desktop sizes against one running site (a 1.6
charger charging, a 2.0.1 charger faulted, sensors, load management): every page fits a
360 px screen, the header stays compact, actions are reachable without sideways scrolling,
the chart's labels are readable and its "now" is the overview's, the charger page shows
live energy and the fault history, and axe-core finds no serious or critical violation.

One daemon for the module: the tests run in file order and only the last one changes the
site (it stops the running session)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from common.timestamps import format_timestamp
from edge.daemon import EdgeDaemon
from sim.charger import SimCharger
from tests.edge.ui.axe import axe_script, serious_violations
from tests.edge.ui.conftest import (
    CHROMIUM,
    add_users,
    base_url,
    browser_login,
    launched_chromium,
    screenshot,
    sim_charger,
    ui_config,
)
from tests.mosquitto import Mosquitto, mosquitto_pub, running_mosquitto
from tests.polling import eventually
from tests.services import missing

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

NARROW = {"width": 360, "height": 740}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# every page a technician uses, and the heading that says it is there
PAGES = {
    "overview": ("/", "Slots"),
    "chargers": ("/chargers", "Chargers"),
    "charger-16": ("/chargers/CP-1", "Charger CP-1"),
    "charger-201": ("/chargers/CP-2", "Charger CP-2"),
    "sessions": ("/sessions", "Sessions"),
    "sensors": ("/sensors", "Sensors"),
    "power": ("/power", "Power"),
    "firmware": ("/firmware", "Firmware"),
    "events": ("/events", "Event log"),
    "users": ("/users", "Users"),
}
EVERY_PAGE = [*PAGES, "login", "result"]
SENSORS = {
    "S-A1": '{"occupied": true, "battery": 64, "rssi": -77}',
    "S-A2": "1",
    "S-B1": '{"occupied": true, "battery": 12, "rssi": -90}',
    "S-B2": "0",
}
# a 1.6 fault with the charger's own words for it, on a second connector
FAULT_16 = {"connectorId": 2, "errorCode": "OverCurrentFailure", "status": "Faulted",
            "info": "RCD tripped", "vendorErrorCode": "E-0042"}  # fmt: skip


@dataclass
class LiveSite:
    daemon: EdgeDaemon
    broker: Mosquitto
    chargers: dict[str, SimCharger]

    def url(self, path: str) -> str:
        return base_url(self.daemon) + path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveSite]:
    workdir = tmp_path_factory.mktemp("phone-first")
    with running_mosquitto(workdir / "mqtt") as broker:
        config = ui_config(workdir / "data", broker, power={"site_limit_kw": 44})
        async with EdgeDaemon(config) as daemon, AsyncExitStack() as stack:
            await daemon.mqtt.wait_connected()
            await add_users(daemon)
            chargers = {
                cid: await stack.enter_async_context(SimCharger(sim_charger(daemon, cid, v)))  # type: ignore[arg-type]
                for cid, v in (("CP-1", "1.6"), ("CP-2", "2.0.1"))
            }
            for charger in chargers.values():
                await charger.wait_online()
            for sensor_id, payload in SENSORS.items():
                topic = f"evpark/test-site/sensors/{sensor_id}/state"
                await mosquitto_pub(broker, topic, payload, retain=True)
            cp1 = chargers["CP-1"]
            await cp1.plug_in(1, soc=40.0)
            await cp1.start(1, "TAG-OK")
            await cp1.send_meter_values(1, n=3)
            now = format_timestamp(daemon.clock())
            await cp1.link.call("StatusNotification", {**FAULT_16, "timestamp": now})
            await chargers["CP-2"].fault(1, "GroundFailure")
            yield LiveSite(daemon, broker, chargers)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        missing(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    async with launched_chromium(CHROMIUM) as launched:
        yield launched


@pytest.fixture
def axe() -> Path:
    return axe_script()


async def open_as(
    browser: Browser, site: LiveSite, user: str, viewport: dict[str, int], **options: Any
) -> Page:
    """A fresh browser context logged in as ``user`` (axe needs the CSP bypassed)."""
    context = await browser.new_context(viewport=viewport, bypass_csp=True, **options)  # type: ignore[arg-type]
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    await browser_login(page, site.daemon, user)
    return page


def user_for(name: str) -> str:
    return "ada" if name == "users" else "tess"  # users are an admin's page


async def visit(page: Page, site: LiveSite, name: str) -> None:
    path, heading = PAGES[name]
    await page.goto(site.url(path))
    await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    await expect(page.locator("#live-status")).to_have_text("live")


async def overflow(page: Page) -> str | None:
    """None when the page is no wider than the screen, else what sticks out."""
    found: str | None = await page.evaluate(
        """() => {
            const width = window.innerWidth;
            if (document.documentElement.scrollWidth <= width) return null;
            const out = Array.from(document.querySelectorAll('body *'))
                .filter((el) => el.getBoundingClientRect().right > width + 0.5)
                .slice(0, 5).map((el) => el.tagName + '.' + el.className);
            return document.documentElement.scrollWidth + ' px: ' + out.join(', ');
        }"""
    )
    return found


async def result_page(browser: Browser, site: LiveSite, viewport: dict[str, int]) -> Page:
    """An action's answer as a browser without JavaScript gets it: the result page (the
    form is sent the plain way, so that axe can still run on the answer)."""
    page = await open_as(browser, site, "tess", viewport)
    form = page.locator('form[action="/ui/slots"]')
    await form.evaluate("(form) => form.removeAttribute('data-async')")
    await page.get_by_label("Slot", exact=True).select_option("B3")
    await form.get_by_role("button", name="Reserve", exact=True).click()
    # the page is measured, not the answer (the slot may be reserved already)
    await expect(page.get_by_role("heading", name=re.compile("^(Not )?[Dd]one$"))).to_be_visible()
    return page


@contextlib.asynccontextmanager
async def opened(
    browser: Browser, site: LiveSite, name: str, viewport: dict[str, int]
) -> AsyncIterator[Page]:
    """Page ``name`` (of PAGES, or "login", or "result") in a context of its own."""
    if name == "result":
        page = await result_page(browser, site, viewport)
    elif name == "login":
        context = await browser.new_context(viewport=viewport, bypass_csp=True)  # type: ignore[arg-type]
        page = await context.new_page()
        await page.goto(site.url("/login"))
    else:
        page = await open_as(browser, site, user_for(name), viewport)
        await visit(page, site, name)
    try:
        yield page
    finally:
        await page.context.close()


@pytest.mark.parametrize("name", EVERY_PAGE)
async def test_the_page_fits_a_360_px_phone(site: LiveSite, browser: Browser, name: str) -> None:
    async with opened(browser, site, name, NARROW) as page:
        await screenshot(page, f"360-{name}")
        found = await overflow(page)
        assert found is None, f"{name} is wider than a 360 px screen: {found}"


async def test_the_phone_header_is_compact_and_its_menu_reaches_every_page(
    site: LiveSite, browser: Browser
) -> None:
    page = await open_as(browser, site, "ada", PHONE)
    header = await page.locator("header.top").bounding_box()
    main = await page.locator("#main").bounding_box()
    assert header is not None
    assert main is not None
    assert header["height"] <= 0.15 * PHONE["height"], f"header {header['height']} px high"
    assert main["y"] >= header["y"] + header["height"]  # nothing under the header
    nav = page.get_by_role("navigation", name="Main")
    for name, (_, heading) in PAGES.items():
        menu = page.get_by_role("button", name="Menu")
        if await menu.is_visible():
            await menu.click()
        link = nav.get_by_role("link", name=heading if name != "overview" else "Overview")
        if name in ("charger-16", "charger-201"):
            continue  # not in the menu: reached from the chargers page
        await link.click()
        await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        assert await overflow(page) is None


async def test_chart_labels_are_readable_on_a_phone_and_power_now_is_one_figure(
    site: LiveSite, browser: Browser
) -> None:
    page = await open_as(browser, site, "tess", PHONE)
    for name in ("overview", "power"):
        await visit(page, site, name)
        await expect(page.locator(".chart text.axis").first).to_be_visible()
        # in one go: a live refresh may replace the chart between two calls
        sizes, heights = await page.evaluate(
            """() => {
                const labels = Array.from(document.querySelectorAll('.chart text.axis'));
                return [labels.map((el) => parseFloat(getComputedStyle(el).fontSize)),
                        labels.map((el) => el.getBoundingClientRect().height)];
            }"""
        )
        assert sizes, f"{name}: no axis labels"
        assert min(sizes) >= 11, f"{name}: axis labels of {sizes} px"
        assert min(heights) >= 11, f"{name}: axis labels drawn {heights} px high"
        await screenshot(page, f"390-{name}")
    await visit(page, site, "overview")
    tile = page.locator("[data-power-now]")
    await expect(tile).to_have_text("11.0 kW")
    await expect(page.locator("[data-chart-now]")).to_have_text("11.0 kW")


async def test_the_charger_page_shows_live_energy_and_the_fault_history(
    site: LiveSite, browser: Browser
) -> None:
    page = await open_as(browser, site, "tess", DESKTOP)
    await visit(page, site, "charger-16")
    running = page.locator("#active-sessions tr[data-session]")
    await expect(running).to_have_count(1)
    energy = (await running.locator("td.num").nth(1).inner_text()).strip()
    assert energy != "0.00 kWh"
    recent = page.locator("#recent-sessions li[data-session]")
    await expect(recent.first).to_contain_text(energy)
    faults = page.locator('#charger-log [data-event-kind="connector_fault"]')
    await expect(faults.first).to_contain_text(
        "OverCurrentFailure (RCD tripped) vendor code E-0042"
    )
    await expect(page.locator("#firmware-update")).to_be_visible()  # kept on the page

    await visit(page, site, "charger-201")
    problem = page.locator('#charger-log [data-event-kind="notify_event"]')
    await expect(problem.first).to_contain_text("Connector 1 Problem = true (GroundFailure)")
    await expect(page.locator('#charger-log [data-event-kind="connector_fault"]')).to_contain_text(
        "connector 1: Faulted"
    )

    await visit(page, site, "overview")
    alert = page.locator('#alerts [data-subject="CP-1"]')
    await expect(alert).to_contain_text(re.compile(r"\(OverCurrentFailure\) since \d{4}-"))


@pytest.mark.parametrize("size", ["phone", "desktop"])
@pytest.mark.parametrize("name", EVERY_PAGE)
async def test_axe_finds_no_serious_violation(
    site: LiveSite, browser: Browser, axe: Path, name: str, size: str
) -> None:
    async with opened(browser, site, name, PHONE if size == "phone" else DESKTOP) as page:
        violations = await serious_violations(page, axe)
        assert violations == [], "\n".join(str(v) for v in violations)


async def test_stop_on_a_phone_without_scrolling_sideways(site: LiveSite, browser: Browser) -> None:
    """Last: it stops the site's running session."""
    overview = await open_as(browser, site, "tess", PHONE)
    await expect(overview.locator("[data-chart-now]")).to_have_text("11.0 kW")
    page = await open_as(browser, site, "tess", PHONE)
    await visit(page, site, "sessions")
    stop = page.get_by_role("button", name=re.compile("^Stop session on CP-1"))
    await expect(stop).to_be_in_viewport()  # on the first screen, as the page opens
    boxes: list[Any] = []

    async def boxed() -> bool:  # the live list may draw the button anew between two calls
        boxes.append(await stop.bounding_box())
        return boxes[-1] is not None

    await eventually(boxed, "the stop button has a box")
    box = boxes[-1]
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= PHONE["width"], box
    assert await page.evaluate("window.scrollX") == 0
    await stop.click()
    await expect(page.locator("#announcer")).to_contain_text("the charger answered Accepted")

    # the open overview follows, live: the tile and the chart's "now" alike
    await expect(overview.locator("[data-power-now]")).to_have_text("0.0 kW")
    await expect(overview.locator("[data-chart-now]")).to_have_text("0.0 kW")
