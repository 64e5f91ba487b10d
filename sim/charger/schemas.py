"""Schema checks of the simulated chargers' frames, independent of the edge.

Every frame a simulated charger sends (its own calls and its answers to the central
system's calls) is checked against the official schema of its protocol version before it
leaves, and every frame it receives on arrival. The schemas are the ones the ``ocpp``
package ships (as the Open Charge Alliance publishes them); the validator is
``fastjsonschema``, a general JSON Schema implementation with its standard formats.
The edge validates with its own compiler (``ocpp_handlers.schemas``): checking the
simulator's traffic with a different implementation is what lets a bug of that compiler
show up as a refused frame instead of passing on both sides.
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

# Where the `ocpp` package keeps each version's schemas.
_FOLDERS: dict[OcppVersion, str] = {"1.6": "v16", "2.0.1": "v201"}


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
    # 1.6 names a request after its action alone; 2.0.1 adds "Request".
    return f"{action}.json" if version == "1.6" else f"{action}Request.json"


@cache
def known_actions(version: OcppVersion) -> frozenset[str]:
    """Every action the version defines (one request schema each)."""
    folder = resources.files("ocpp").joinpath(_FOLDERS[version], "schemas")
    names = [entry.name.removesuffix(".json") for entry in folder.iterdir()]
    if version == "1.6":
        return frozenset(name for name in names if not name.endswith("Response"))
    return frozenset(name.removesuffix("Request") for name in names if name.endswith("Request"))


@cache
def _validator(version: OcppVersion, action: str, kind: Kind) -> Callable[[Any], Any]:
    if action not in known_actions(version):
        raise UnknownAction(f"OCPP {version} has no action {action!r}")
    path = resources.files("ocpp").joinpath(
        _FOLDERS[version], "schemas", _file_name(version, action, kind)
    )
    schema = json.loads(path.read_text(encoding="utf-8"))
    # The `$id`s are URNs fastjsonschema would try to resolve; the schemas only refer
    # to their own definitions.
    schema.pop("$id", None)
    check: Callable[[Any], Any] = fastjsonschema.compile(schema)
    return check


def validate(version: OcppVersion, action: str, kind: Kind, payload: dict[str, Any]) -> None:
    """Raise :class:`SchemaViolation` unless ``payload`` is valid; :class:`UnknownAction`
    when the version has no such action."""
    check = _validator(version, action, kind)
    try:
        check(payload)
    except fastjsonschema.JsonSchemaValueException as err:
        raise SchemaViolation(version, action, kind, err.message) from err
