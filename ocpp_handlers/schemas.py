"""Compiled validators for the official OCPP JSON schemas, and the CALLERROR they imply.

The schemas are the ones the ``ocpp`` package ships (OCPP 1.6J and 2.0.1, as published by
the Open Charge Alliance). Each is compiled once, on first use, into a Python function
(``schema_compiler``; fastjsonschema for anything it does not cover): validation then
costs microseconds and runs on the event loop, with no thread hop per message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Final

import fastjsonschema

from ocpp_handlers.schema_compiler import INT_MAX, INT_MIN, Unsupported, compile_schema

Validator = Callable[[Any], Any]


class Version(StrEnum):
    V16 = "ocpp1.6"
    V201 = "ocpp2.0.1"


SUBPROTOCOLS: Final = (Version.V201, Version.V16)


@dataclass(frozen=True, slots=True)
class SchemaViolation(Exception):
    """A payload does not match its schema; ``code`` is the CALLERROR code to answer with."""

    code: str
    description: str

    def __str__(self) -> str:
        return f"{self.code}: {self.description}"


def _schema_file(version: Version, action: str, response: bool) -> str:
    if version is Version.V16:
        return f"{action}Response.json" if response else f"{action}.json"
    return f"{action}Response.json" if response else f"{action}Request.json"


def _schema_dir(version: Version) -> str:
    return "v16" if version is Version.V16 else "v201"


@cache
def known_actions(version: Version) -> frozenset[str]:
    """Every action the version defines (from the schema files present)."""
    folder = resources.files("ocpp").joinpath(_schema_dir(version), "schemas")
    names = [entry.name.removesuffix(".json") for entry in folder.iterdir()]
    if version is Version.V16:
        return frozenset(n for n in names if not n.endswith("Response"))
    return frozenset(n.removesuffix("Request") for n in names if n.endswith("Request"))


@cache
def validator(version: Version, action: str, response: bool) -> Validator:
    """The compiled validator of one message; KeyError if the action does not exist."""
    if action not in known_actions(version):
        raise KeyError(action)
    path = resources.files("ocpp").joinpath(
        _schema_dir(version), "schemas", _schema_file(version, action, response)
    )
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema.pop("$id", None)
    # A strict "date-time" check would refuse RFC 3339 as some chargers write it (odd
    # fractions of a second); timestamps are parsed in the handlers, which answer a bad
    # one with a clear error.
    formats: dict[str, Callable[[str], bool]] = {
        "date-time": _looks_like_datetime,
        "uri": _any_string,
    }
    codes = _KIND_CODES_16 if version is Version.V16 else _KIND_CODES_201

    def fail(kind: str, description: str) -> SchemaViolation:
        return SchemaViolation(codes[kind], description[:255])

    try:
        return compile_schema(schema, fail, formats)
    except Unsupported:
        pass  # a general validator for what the compiler does not write code for
    _sets_for_enums(schema, formats)
    general = fastjsonschema.compile(schema, formats=formats)
    rule_codes = _RULE_CODES_16 if version is Version.V16 else _RULE_CODES_201

    def check(payload: Any) -> None:
        try:
            general(payload)
        except fastjsonschema.JsonSchemaValueException as err:
            code = rule_codes.get(err.rule or "", "PropertyConstraintViolation")
            raise SchemaViolation(code, _describe(err)) from err
        if not _integers_bounded(payload):  # as the compiled checks do (schema_compiler)
            raise SchemaViolation(
                "PropertyConstraintViolation", "payload: an integer is outside the 64-bit range"
            )

    return check


def _sets_for_enums(node: Any, formats: dict[str, Callable[[str], bool]]) -> None:
    """Check string enums by set membership.

    fastjsonschema tests an enum as a chain of comparisons, one per allowed value; OCPP
    enums have up to 40 values and meter values repeat them per sample, which made
    validation the largest cost of a MeterValues. A custom format backed by a frozenset
    accepts and refuses exactly the same strings (and fails with the same CALLERROR,
    PropertyConstraintViolation).
    """
    if isinstance(node, dict):
        values = node.get("enum")
        if (
            node.get("type") == "string"
            and isinstance(values, list)
            and values
            and all(isinstance(v, str) for v in values)
            and "format" not in node
        ):
            # the format's name is what a CALLERROR's description shows
            name = "one of " + ", ".join(values)
            formats[name] = frozenset(values).__contains__
            del node["enum"]
            node["format"] = name
        for child in node.values():
            _sets_for_enums(child, formats)
    elif isinstance(node, list):
        for child in node:
            _sets_for_enums(child, formats)


def _integers_bounded(value: Any) -> bool:
    if type(value) is int:
        return INT_MIN <= value <= INT_MAX
    if isinstance(value, dict):
        return all(_integers_bounded(v) for v in value.values())
    if isinstance(value, list):
        return all(_integers_bounded(v) for v in value)
    return True


def _looks_like_datetime(value: str) -> bool:
    return len(value) >= 19 and value[4] == "-" and value[7] == "-" and value[10] in "Tt "


def _any_string(value: str) -> bool:
    return True


# fastjsonschema names the failed rule; OCPP names the CALLERROR for each kind of failure.
_RULE_CODES_16: Final = {
    "type": "TypeConstraintViolation",
    "required": "OccurenceConstraintViolation",  # sic: 1.6 spells it so
    "minItems": "OccurenceConstraintViolation",
    "maxItems": "OccurenceConstraintViolation",
    "additionalProperties": "FormationViolation",
}
_RULE_CODES_201: Final = {
    "type": "TypeConstraintViolation",
    "required": "OccurrenceConstraintViolation",
    "minItems": "OccurrenceConstraintViolation",
    "maxItems": "OccurrenceConstraintViolation",
    "additionalProperties": "FormatViolation",
}


_KIND_CODES_16: Final = {
    "type": "TypeConstraintViolation",
    "occurrence": "OccurenceConstraintViolation",  # sic: 1.6 spells it so
    "formation": "FormationViolation",
    "property": "PropertyConstraintViolation",
}
_KIND_CODES_201: Final = {
    "type": "TypeConstraintViolation",
    "occurrence": "OccurrenceConstraintViolation",
    "formation": "FormatViolation",
    "property": "PropertyConstraintViolation",
}


def formation_error(version: Version) -> str:
    """The code for a frame that is not a well-formed OCPP-J message."""
    return "FormationViolation" if version is Version.V16 else "FormatViolation"


def validate(version: Version, action: str, payload: Any, *, response: bool = False) -> None:
    """Raise :class:`SchemaViolation` with the spec's error code if ``payload`` is invalid."""
    validator(version, action, response)(payload)


def _describe(err: fastjsonschema.JsonSchemaValueException) -> str:
    name = err.name or "data"
    where = name.replace("data.", "", 1) if name != "data" else "payload"
    return f"{where}: {str(err.message).replace(name + ' ', '', 1)}"[:255]
