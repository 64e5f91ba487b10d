"""axe-core (npm ``axe-core``), injected into a page by Playwright to measure accessibility.

axe is looked up in ``$EVPARK_AXE_DIR`` or ``.cache/axe`` at the top of the repository
(``bash .ci/check`` installs it there: ``npm install --no-save --prefix .cache/axe
axe-core@4``). Without it the tests skip on a laptop and fail under ``CI=true``. Pages
carry a strict Content-Security-Policy, so the browser context that injects axe must be
created with ``bypass_csp=True``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Page

from tests.services import missing

ROOT = Path(__file__).resolve().parents[3]
AXE_DIR = Path(os.environ.get("EVPARK_AXE_DIR", ROOT / ".cache" / "axe"))
BLOCKING = ("serious", "critical")


def axe_script() -> Path:
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        missing(f"axe-core at {script} (npm install --no-save --prefix {AXE_DIR} axe-core@4)")
    return script


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    targets: list[str]

    def __str__(self) -> str:
        return f"{self.impact} {self.rule}: {self.help} at {', '.join(self.targets[:4])}"


async def serious_violations(page: Page, script: Path) -> list[Violation]:
    """The serious and critical violations axe finds on the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(script))
    found: list[dict[str, Any]] = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        Violation(v["id"], v["impact"], v["help"], [str(n["target"]) for n in v["nodes"]])
        for v in found
        if v.get("impact") in BLOCKING
    ]
