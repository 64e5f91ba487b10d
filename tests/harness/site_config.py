"""Site files for daemons that tests and benches start: TOML from keyword sections.

``site_toml({"site": {"id": "s"}, "ocpp": {"port": 9000}, "chargers": [{"id": "CP-1"}]})``
writes what an admin would: a ``[table]`` per mapping, ``[[table]]`` per mapping in a list,
``[a.b]`` for a mapping inside a table, values as TOML (strings quoted with ``json.dumps``,
whose escapes TOML reads the same; paths as strings; lists of values inline). A ``None``
value leaves its key out: TOML has no null, and a missing key means the default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def site_toml(sections: Mapping[str, Any], *, comment: str = "") -> str:
    """The TOML text of ``sections``, after ``comment`` (each line made a ``#`` comment)."""
    lines = [f"# {line}" for line in comment.splitlines()]
    _table(lines, (), sections)
    return "\n".join(lines) + "\n"


def write_site_toml(path: Path, sections: Mapping[str, Any], *, comment: str = "") -> Path:
    path.write_text(site_toml(sections, comment=comment), encoding="utf-8")
    return path


def _is_table(value: object) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(value, Mapping)


def _is_list(value: object) -> TypeGuard[Sequence[Any]]:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _is_table_array(value: object) -> TypeGuard[Sequence[Mapping[str, Any]]]:
    """A non-empty list of mappings: ``[[name]]`` tables (an empty list is ``name = []``)."""
    return _is_list(value) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    """The plain keys of ``table`` first (TOML puts them before any sub-table), then its
    tables and arrays of tables, each under its header."""
    nested: list[tuple[str, Any]] = []
    for key, value in table.items():
        if value is None:
            continue
        if _is_table(value) or _is_table_array(value):
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested:
        name = ".".join(_key(part) for part in (*path, key))
        if _is_table(value):
            _section(lines, f"[{name}]", (*path, key), value)
        else:
            for item in value:
                _section(lines, f"[[{name}]]", (*path, key), item)


def _section(
    lines: list[str], header: str, path: tuple[str, ...], table: Mapping[str, Any]
) -> None:
    if lines:
        lines.append("")  # a blank line between tables, as people write them
    lines.append(header)
    _table(lines, path, table)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    # json.dumps escapes quotes, backslashes and control characters as TOML does, except
    # DEL, which TOML does not allow raw in a string
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: object) -> str:
    if isinstance(value, bool):  # before int: a bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # inf, -inf and nan are TOML's spellings too
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Path):
        return _string(str(value))
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return f"{{ {pairs} }}" if pairs else "{}"
    if _is_list(value):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML value for {type(value).__name__}: {value!r}")
