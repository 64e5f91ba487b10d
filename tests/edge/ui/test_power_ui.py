"""The power page against the running daemon with simulated chargers of both versions:
what each session is offered and why, the site limit over time, a technician's temporary
limit (a viewer's refused, bad input refused, each change audited and obeyed by the
chargers), live in a real browser; and what the page says when load management is off."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from edge.services.users import audit_entries
from edge.ui.power import PowerPoint, bucket_ends, chart, limit_series
from sim.charger import SimCharger
from tests.edge.power.charging import start_charging
from tests.edge.ui.conftest import (
    Client,
    base_url,
    browser_login,
    logged_in,
    screenshot,
    sim_charger,
    ui_config,
)
from tests.mosquitto import Mosquitto
from tests.polling import eventually

VERSIONS = {"CP-1": "1.6", "CP-2": "2.0.1"}
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def site_config(tmp_path: Path, broker: Mosquitto) -> SiteConfig:
    power = {"site_limit_kw": 16, "min_session_kw": 1.4, "failsafe_kw": 1.0, "cycle_seconds": 1}
    return ui_config(tmp_path / "data", broker, power=power)


@pytest.fixture
async def charging(daemon: EdgeDaemon) -> AsyncIterator[dict[str, SimCharger]]:
    """Both chargers connected, each with a car charging on connector 1."""
    async with AsyncExitStack() as stack:
        chargers = {
            cid: await stack.enter_async_context(SimCharger(sim_charger(daemon, cid, version)))  # type: ignore[arg-type]
            for cid, version in VERSIONS.items()
        }
        await start_charging(chargers.values())
        yield chargers


def sessions(page: str) -> dict[str, tuple[str, float, str]]:
    """Each session row's charger: its state, offered kW and measured, from the HTML."""
    rows = re.findall(
        r'data-power-session="[^"]+" data-charger="([^"]+)" data-state="([^"]+)">.*?'
        r"data-offered>([\d.]+) kW</td>\s*<td class=\"num\" data-measured>([^<]*)</td>",
        page,
        re.S,
    )
    return {charger: (state, float(kw), measured) for charger, state, kw, measured in rows}


def shares(page: str, low: float, high: float) -> bool:
    """Both sessions charging, each offered between ``low`` and ``high`` kW."""
    found = sessions(page)
    return set(found) == set(VERSIONS) and all(
        state == "charging" and low < kw <= high for state, kw, _ in found.values()
    )


async def post_limit(client: Client, **form: str) -> tuple[int, dict[str, object]]:
    reply = await client.http.post(
        "/ui/power/limit",
        data=form,
        headers={"X-CSRF-Token": client.csrf, "Accept": "application/json"},
    )
    return reply.status_code, reply.json()


# --- pure parts ------------------------------------------------------------------------


def test_the_limit_in_force_steps_at_each_change() -> None:
    ends = bucket_ends(T0, T0 + timedelta(minutes=20))
    changes = [PowerPoint(T0 + timedelta(minutes=7), 10_000.0),
               PowerPoint(T0 + timedelta(minutes=16), 16_000.0)]  # fmt: skip
    points = limit_series(16_000.0, changes, ends)
    assert [p.power_w for p in points] == [16_000.0, 10_000.0, 10_000.0, 16_000.0]


def test_the_chart_draws_the_limit_over_the_power_and_scales_to_both() -> None:
    ends = bucket_ends(T0, T0 + timedelta(minutes=15))
    power = [PowerPoint(at, 3_000.0) for at in ends]
    limit = limit_series(40_000.0, [PowerPoint(ends[1], 20_000.0)], ends)
    drawn = chart(power, limit=limit)
    assert drawn.limit_kw == 20.0
    assert drawn.y_ticks[-1].label == "50"  # the limit, not the power, sets the top
    assert drawn.limit_line.startswith("M0.0,")
    assert drawn.limit_line.count("V") == len(ends) - 1
    assert "site limit now 20.0 kW" in drawn.description
    assert chart(power).limit_line == ""  # without load management: no limit


# --- the page and its form -------------------------------------------------------------


async def test_the_page_shows_offers_and_a_technician_sets_a_temporary_limit(
    daemon: EdgeDaemon, charging: dict[str, SimCharger]
) -> None:
    async with logged_in(daemon, "vic") as viewer, logged_in(daemon, "tess") as tech:

        async def shared() -> bool:
            # half of 16 kW each, rounded down to what a profile in amps can say
            return shares((await viewer.http.get("/power")).text, 7.0, 8.0)

        await eventually(shared, "each session offered half of 16 kW", within=15)
        for cp in charging.values():
            await cp.send_meter_values(1)

        async def measured() -> bool:
            found = sessions((await viewer.http.get("/power")).text)
            return all(m.endswith(" kW") for _, _, m in found.values())

        await eventually(measured, "each session's measured power shown")
        page = (await viewer.http.get("/power")).text
        assert "No temporary limit" in page
        assert 'class="limit"' in page  # the limit line over the chart
        overview = (await viewer.http.get("/")).text
        assert 'class="limit"' in overview  # the overview's chart draws it too
        assert "Set limit" not in page  # a viewer sees no form
        for fragment in ("limits", "chart", "chargers"):  # what the live page fetches
            reply = await viewer.http.get("/power", params={"fragment": fragment})
            assert reply.status_code == 200, (fragment, reply.text[:300])
            assert "<main" not in reply.text  # the section's inside, not the page

        status, _ = await post_limit(viewer, action="set", limit_kw="4")
        assert status == 403
        assert daemon.power.override is None

        for bad in ({"limit_kw": "17"}, {"limit_kw": "nan"}, {"limit_kw": "0"},
                    {"limit_kw": "5", "minutes": "0"}, {"limit_kw": "five"}):  # fmt: skip
            status, answer = await post_limit(tech, action="set", **bad)
            assert status == 422, (bad, answer)
        assert daemon.power.override is None

        status, answer = await post_limit(tech, action="set", limit_kw="6", minutes="30")
        assert (status, answer["ok"]) == (200, True), answer
        assert daemon.power.override is not None
        assert daemon.power.override.limit_w == 6_000
        assert daemon.power.override.set_by == "ui:tess"

        def obeyed() -> float:
            return sum(cp.connectors[1].meter.limit_w or 0 for cp in charging.values())

        async def lowered() -> bool:
            return 0 < obeyed() <= 6_000

        await eventually(lowered, "the chargers obey the temporary limit", within=15)
        page = (await viewer.http.get("/power")).text
        assert re.search(r"data-limit-in-force>6.0 kW<", page)
        assert "set by <strong>ui:tess</strong>" in page

        async def within_limit() -> bool:
            found = sessions((await viewer.http.get("/power")).text).values()
            return 0 < sum(kw for _, kw, _ in found) <= 6.0

        # the page agrees (a car still measured at its old draw may wait its turn)
        await eventually(within_limit, "the page offers at most 6 kW in all")

        status, answer = await post_limit(tech, action="clear")
        assert (status, answer["answer"]) == (200, "cleared")
        assert daemon.power.override is None

        async def raised() -> bool:
            return obeyed() > 6_000

        await eventually(raised, "the limits go up again", within=15)

    audit = await daemon.store.read(audit_entries)
    mine = [a for a in audit if a["action"] == "power-limit"]  # newest first
    assert [(a["username"], a["target"], a["outcome"]) for a in mine] == [
        ("tess", "site", "cleared"),
        ("tess", "site", "set"),
    ]
    assert mine[1]["detail"] == {"action": "set", "limit_kw": "6", "minutes": "30"}


async def test_the_page_says_how_to_turn_load_management_on(
    tmp_path: Path, broker: Mosquitto
) -> None:
    from tests.edge.ui.conftest import add_users

    async with EdgeDaemon(ui_config(tmp_path / "data", broker)) as daemon:
        await add_users(daemon)
        async with logged_in(daemon, "tess") as tech:
            page = (await tech.http.get("/power")).text
            assert "Load management is off" in page
            assert "site_limit_kw" in page
            assert "Set limit" not in page
            status, answer = await post_limit(tech, action="set", limit_kw="5")
            assert status == 409, answer
            metrics = (await tech.http.get("/metrics")).text
            assert "evpark_power_" not in metrics  # no gauges that could only say 0
        assert await daemon.store.read(audit_entries) == []


# --- in a browser ------------------------------------------------------------------------


@pytest.mark.browser
async def test_a_temporary_limit_from_the_form_shows_live(
    daemon: EdgeDaemon, charging: dict[str, SimCharger], browser: Browser
) -> None:
    page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
    await browser_login(page, daemon, "tess")
    await page.goto(base_url(daemon) + "/power")
    cp1 = page.locator('#power-chargers tr[data-charger="CP-1"] [data-offered]')
    await expect(cp1).to_have_text("7.9 kW", timeout=15_000)  # half of 16 kW, in amps
    await page.get_by_label("Limit (kW", exact=False).fill("4")
    await page.get_by_label("For (minutes", exact=False).fill("60")
    await page.get_by_role("button", name="Set limit").click()
    await expect(page.locator("#announcer")).to_contain_text("site limit 4 kW until")
    await expect(page.locator("[data-limit-in-force]")).to_have_text("4.0 kW")
    await expect(page.locator("#override")).to_contain_text("ui:tess")
    await expect(cp1).not_to_have_text("7.9 kW", timeout=15_000)  # live, no reload
    await expect(page.locator("#power-chart figcaption")).to_contain_text("limit in force, now 4.0")
    await screenshot(page, "power")
    await page.get_by_role("button", name="Remove temporary limit").click()
    await expect(page.locator("#override")).to_have_attribute("data-override", "no")

    await page.set_viewport_size({"width": 390, "height": 844})  # a phone: tables scroll
    await page.reload()
    await expect(page.locator("#power-chargers tr[data-charger]")).to_have_count(2)
    wide = "document.documentElement.scrollWidth <= window.innerWidth"
    assert await page.evaluate(wide), "the power page scrolls sideways on a phone"
    await screenshot(page, "phone-power-on")
