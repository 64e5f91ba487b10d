"""Fixtures for the web UI: a real daemon with a real Mosquitto, users in its store,
simulated chargers, logged-in HTTP clients, and Chromium driven by Playwright.

Without ``/usr/bin/chromium`` (or Mosquitto) the browser tests skip on a laptop and fail
under ``CI=true`` (``tests.services.missing``). Screenshots go to
``artifacts/screenshots/``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from playwright.async_api import Browser, Page, async_playwright, expect

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from edge.services import users as u
from edge.storage.sqlite import Unit
from sim.charger import OcppVersion, SimChargerConfig
from tests.edge.conftest import make_config, sim_charger_config
from tests.mosquitto import Mosquitto, running_mosquitto
from tests.services import missing

CHROMIUM = Path(os.environ.get("EVPARK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "artifacts" / "screenshots"
PASSWORD = "correct horse battery"
USERS = {"ada": u.Role.ADMIN, "tess": u.Role.TECHNICIAN, "vic": u.Role.VIEWER}
SLOTS: list[dict[str, Any]] = [
    {"id": "A1", "type": "ev", "sensor": "S-A1", "charger": "CP-1", "evse": 1, "label": "EV 1"},
    {"id": "A2", "type": "ev", "sensor": "S-A2", "charger": "CP-2", "evse": 1, "label": "EV 2"},
    {"id": "B1", "type": "standard", "sensor": "S-B1"},
    {"id": "B2", "type": "standard", "sensor": "S-B2"},
    {"id": "B3", "type": "standard", "sensor": "S-B3"},
    {"id": "C1", "type": "accessible", "sensor": "S-C1"},
]


def ui_config(data_dir: Path, broker: Mosquitto, **sections: Any) -> SiteConfig:
    return make_config(
        data_dir,
        site={"id": "test-site", "name": "Test car park", "environment": "development"},
        chargers=[{"id": "CP-1"}, {"id": "CP-2"}],
        slots=SLOTS,
        slot_timing={"debounce": 0},
        mqtt={"url": broker.url, "embedded": False},
        **sections,
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path / "mqtt") as mosquitto:
        yield mosquitto


@pytest.fixture
def site_config(tmp_path: Path, broker: Mosquitto) -> SiteConfig:
    return ui_config(tmp_path / "data", broker)


async def add_users(daemon: EdgeDaemon, users: dict[str, u.Role] = USERS) -> None:
    # cheap parameters: the daemon upgrades the hash at the first login
    passwords = u.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    unit = Unit()
    for name, role in users.items():
        u.insert_user(unit, name, passwords.hash(PASSWORD), role, daemon.clock())
    await daemon.store.write(unit)


@pytest.fixture
async def daemon(site_config: SiteConfig) -> AsyncIterator[EdgeDaemon]:
    async with EdgeDaemon(site_config) as running:
        await running.mqtt.wait_connected()
        await add_users(running)
        yield running


def base_url(daemon: EdgeDaemon) -> str:
    return f"http://127.0.0.1:{daemon.http_port}"


def sim_charger(daemon: EdgeDaemon, charger_id: str, version: OcppVersion) -> SimChargerConfig:
    return sim_charger_config(daemon, charger_id, version, vendor="Simulated", model="SimBox 22")


# --- HTTP clients that log in like a browser -----------------------------------------

_LOGIN_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]*)"')


@dataclass
class Client:
    http: httpx.AsyncClient
    csrf: str


async def login(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    form = await http.get("/login")
    token = _LOGIN_TOKEN.search(form.text)
    assert token is not None, form.text
    return await http.post(
        "/login",
        data={"username": username, "password": password, "login_token": token.group(1)},
    )


async def csrf_of(http: httpx.AsyncClient) -> str:
    page = await http.get("/")
    found = _CSRF.search(page.text)
    assert found is not None, page.text[:500]
    assert found.group(1), "the page has no CSRF token: not logged in?"
    return found.group(1)


@contextlib.asynccontextmanager
async def logged_in(daemon: EdgeDaemon, username: str) -> AsyncIterator[Client]:
    async with httpx.AsyncClient(base_url=base_url(daemon), timeout=15) as http:
        reply = await login(http, username)
        assert reply.status_code == 303, reply.text
        yield Client(http, await csrf_of(http))


# --- the browser -------------------------------------------------------------------


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        missing(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@contextlib.asynccontextmanager
async def launched_chromium(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with launched_chromium(chromium) as launched:
        yield launched


async def browser_login(page: Page, daemon: EdgeDaemon, username: str) -> None:
    await page.goto(base_url(daemon) + "/login")
    await page.get_by_label("User name").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#live-status")).to_have_text("live")


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
