"""The reference pages name tests as evidence; a renamed or deleted test must not leave
a page pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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


# Markdown links `[text](target)`, not images' own alt text; targets with a scheme are external.
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_PAGES = sorted([ROOT / "README.md", ROOT / "bench" / "README.md", *(ROOT / "docs").glob("*.md")])


def _without_code(text: str) -> list[str]:
    """The lines outside fenced code blocks (a `# comment` in a shell block is no heading)."""
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _anchors(page: Path) -> set[str]:
    """The fragments GitHub gives a page's headings."""
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for line in _without_code(page.read_text()):
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


@pytest.mark.parametrize("page", _PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_and_heading(page: Path) -> None:
    broken = []
    for line in _without_code(page.read_text()):
        for target in _LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue
            path, _, fragment = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            missing_heading = (
                linked.exists()
                and linked.suffix == ".md"
                and bool(fragment)
                and fragment not in _anchors(linked)
            )
            if not linked.exists() or missing_heading:
                broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} has broken links: {broken}"


def test_the_index_lists_every_page_and_the_readme_links_the_index() -> None:
    index = (ROOT / "docs" / "README.md").read_text()
    unlisted = [
        page.name
        for page in sorted((ROOT / "docs").glob("*.md"))
        if page.name != "README.md" and f"]({page.name})" not in index
    ]
    assert not unlisted, f"docs/README.md does not list {unlisted}"
    assert "](docs/README.md)" in (ROOT / "README.md").read_text()
