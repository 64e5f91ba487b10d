"""The UI screenshots in the README and docs/ui.md, taken from a running site.

Run against ``evpark demo`` after it has run for a few minutes (the chart then has
history), with the UI user it prints::

    EVPARK_UI_PASSWORD=... .venv/bin/python -m tests.edge.ui.screenshots --user demo [--path /]

It writes ``edge/ui/static/overview.png`` (desktop, 1280 x 800) and
``edge/ui/static/overview-phone.png`` (a phone, 390 x 844): the screen as it opens, not
the whole page, to keep the files small.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from playwright.async_api import Browser, expect

from tests.edge.ui.conftest import CHROMIUM, launched_chromium

STATIC = Path(__file__).resolve().parents[3] / "edge" / "ui" / "static"
SIZES = {"overview.png": (1280, 800), "overview-phone.png": (390, 844)}


async def shoot(browser: Browser, url: str, user: str, password: str, path: str) -> None:
    for name, (width, height) in SIZES.items():
        context = await browser.new_context(viewport={"width": width, "height": height})
        page = await context.new_page()
        await page.goto(url + "/login")
        await page.get_by_label("User name").fill(user)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Log in").click()
        await page.goto(url + path)
        await expect(page.locator("#live-status")).to_have_text("live")
        await page.wait_for_timeout(1500)  # let the first live refresh settle
        await page.screenshot(path=str(STATIC / name))
        await context.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--user", default="demo")
    parser.add_argument("--path", default="/?hours=1", help="the page (a young demo: 1 h chart)")
    args = parser.parse_args()
    password = os.environ["EVPARK_UI_PASSWORD"]
    async with launched_chromium(CHROMIUM) as browser:
        await shoot(browser, args.url.rstrip("/"), args.user, password, args.path)


if __name__ == "__main__":
    asyncio.run(main())
