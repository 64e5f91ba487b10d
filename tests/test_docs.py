"""The reference pages name tests as evidence; a renamed or deleted test must not leave
a page pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# `tests/x.py`, `tests/x.py::test_name`, or `::test_name` (same file as the last one named)
_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(test_\w+))?`|`::(test_\w+)`")


def _references(page: Path) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    current: str | None = None
    for match in _REFERENCE.finditer(page.read_text()):
        path, name, same_file_name = match.groups()
        if path is not None:
            current = path
            found.append((path, name))
        else:
            assert current is not None, f"{page.name}: `::{same_file_name}` before any file"
            found.append((current, same_file_name))
    return found


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_every_test_a_page_names_exists(page: Path) -> None:
    missing = []
    for path, name in _references(page):
        source = ROOT / path
        if not source.is_file():
            missing.append(path)
        elif name is not None and not re.search(
            rf"^\s*(async )?def {name}\b", source.read_text(), re.M
        ):
            missing.append(f"{path}::{name}")
    assert not missing, f"{page.name} names tests that do not exist: {missing}"


def test_the_security_page_names_its_evidence() -> None:
    assert len(_references(ROOT / "docs" / "security.md")) >= 40
