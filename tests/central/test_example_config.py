"""config/central.example.toml lists every central setting, each with a comment and its
default: a setting added to the code without a line there fails here."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from central.settings import CentralSettings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "central.example.toml"
_SECTION = re.compile(r"^\[([\w.]+)\]")
# a setting, set ("key = ...") or left unset ("# key = ...")
_KEY = re.compile(r"^(#\s*)?(\w+)\s*=")


def settings_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every setting's path (``("notification", "smtp", "host")``); a nested model is a
    section, anything else (dicts included) one key."""
    found: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found += settings_paths(kind, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def example_lines() -> list[tuple[tuple[str, ...], str]]:
    """Each setting line of the example with the path it names."""
    section: tuple[str, ...] = ()
    found: list[tuple[tuple[str, ...], str]] = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if header := _SECTION.match(line):
            section = tuple(header.group(1).split("."))
            found.append((section, line))
        elif key := _KEY.match(line):
            found.append(((*section, key.group(2)), line))
    return found


def test_every_setting_is_in_the_example() -> None:
    listed = {path for path, _line in example_lines()}
    missing = [".".join(p) for p in settings_paths(CentralSettings) if p not in listed]
    assert missing == [], f"add these to {EXAMPLE.name}, each with a comment: {missing}"


def test_every_setting_line_has_a_comment() -> None:
    bare = [line for _path, line in example_lines() if "  #" not in line.split("=", 1)[-1]]
    assert bare == [], "each setting says what it is on its line"


def test_the_example_names_no_setting_that_does_not_exist() -> None:
    known = set(settings_paths(CentralSettings))
    sections = {p[:i] for p in known for i in range(1, len(p))}
    dicts = {("service_ports",), ("service_urls",), ("database_urls",)}
    unknown = [
        ".".join(path)
        for path, _line in example_lines()
        if path not in known | sections and path[:1] not in dicts
    ]
    assert unknown == []


def _without_central_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("EVPARK_CENTRAL_"):
            monkeypatch.delenv(name)


def test_the_example_loads_and_sets_every_default(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_central_environment(monkeypatch)
    parsed: dict[str, Any] = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert parsed["notification"]["smtp"]["port"] == 25
    defaults = CentralSettings().model_dump()
    monkeypatch.setenv("EVPARK_CENTRAL_CONFIG", str(EXAMPLE))
    assert load_settings().model_dump() == defaults
