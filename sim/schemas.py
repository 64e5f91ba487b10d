"""Compiled validators for the official OCPP JSON schemas shipped with the `ocpp` package.

Every frame the simulator sends (its own calls and its answers to the central system's
calls) is checked against the schema of its protocol version before it leaves. The
schemas are compiled with fastjsonschema on first use and cached per action.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any, Literal

import fastjsonschema

OcppVersion = Literal["1.6", "2.0.1"]
Kind = Literal["request", "response"]

_PACKAGE = {"1.6": "ocpp.v16", "2.0.1": "ocpp.v201"}


class SchemaViolation(ValueError):
    """A payload does not validate against the official schema of its action."""

    def __init__(self, version: OcppVersion, action: str, kind: Kind, message: str) -> None:
        self.version = version
        self.action = action
        self.kind = kind
        super().__init__(f"OCPP {version} {action} {kind}: {message}")


class UnknownAction(LookupError):
    """The protocol version has no schema (hence no message) of that name."""


def _file_name(version: OcppVersion, action: str, kind: Kind) -> str:
    if kind == "response":
        return f"{action}Response.json"
    return f"{action}.json" if version == "1.6" else f"{action}Request.json"


@cache
def _validator(version: OcppVersion, action: str, kind: Kind) -> Callable[[dict[str, Any]], object]:
    schema_dir = resources.files(_PACKAGE[version]).joinpath("schemas")
    path = schema_dir.joinpath(_file_name(version, action, kind))
    if not path.is_file():
        raise UnknownAction(f"OCPP {version} has no action {action!r}")
    schema = json.loads(path.read_text(encoding="utf-8"))
    # The 2.0.1 files carry an `$id` URN that fastjsonschema would try to resolve.
    schema.pop("$id", None)
    compiled: Callable[[dict[str, Any]], object] = fastjsonschema.compile(schema)
    return compiled


def has_action(version: OcppVersion, action: str) -> bool:
    try:
        _validator(version, action, "request")
    except UnknownAction:
        return False
    return True


def validate(version: OcppVersion, action: str, kind: Kind, payload: dict[str, Any]) -> None:
    """Raise :class:`SchemaViolation` unless ``payload`` is valid; :class:`UnknownAction`
    when the version has no such action."""
    check = _validator(version, action, kind)
    try:
        check(payload)
    except fastjsonschema.JsonSchemaException as err:
        raise SchemaViolation(version, action, kind, str(err)) from err
