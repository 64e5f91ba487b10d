"""Compiled validators for the official OCPP JSON schemas, and the CALLERROR they imply.

The schemas are the ones the ``ocpp`` package ships (OCPP 1.6J and 2.0.1, as published by
the Open Charge Alliance). Each is compiled once, on first use, into a Python function
(``schema_compiler``, which covers every schema the package ships; a test compiles them
all): validation then costs microseconds and runs on the event loop, with no thread hop
per message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Final

from ocpp_handlers import quirks
from ocpp_handlers.schema_compiler import compile_schema

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
    return _compile(version, _load(version, action, response))


def _load(version: Version, action: str, response: bool) -> dict[str, Any]:
    if action not in known_actions(version):
        raise KeyError(action)
    path = resources.files("ocpp").joinpath(
        _schema_dir(version), "schemas", _schema_file(version, action, response)
    )
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    schema.pop("$id", None)
    return schema


def _compile(version: Version, schema: dict[str, Any]) -> Validator:
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

    return compile_schema(schema, fail, formats)


def _sampled_value_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``properties`` of every sampled value schema in ``schema`` (as it is, not a copy)."""
    definitions = schema.get("definitions", {})
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            sampled = node.get("properties", {}).get("sampledValue")
            if isinstance(sampled, dict):
                items = sampled["items"]
                if "$ref" in items:
                    items = definitions[items["$ref"].removeprefix("#/definitions/")]
                found.append(items["properties"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(schema)
    return found


@cache
def sampled_value_enums(version: Version, action: str) -> dict[str, frozenset[str]]:
    """The words each tolerated field of a sampled value may take, by the schema."""
    schema = _load(version, action, response=False)
    definitions = schema.get("definitions", {})
    enums: dict[str, frozenset[str]] = {}
    for properties in _sampled_value_fields(schema):
        for field in quirks.FIELDS:
            node = properties.get(field)
            if node is not None and "$ref" in node:
                node = definitions[node["$ref"].removeprefix("#/definitions/")]
            if node is not None and "enum" in node:
                enums[field] = frozenset(node["enum"])
    return enums


@cache
def lenient_validator(version: Version, action: str) -> Validator:
    """A meter message's validator that takes any string in the tolerated fields."""
    schema = _load(version, action, response=False)
    for properties in _sampled_value_fields(schema):
        for field in quirks.FIELDS:
            if field in properties:
                properties[field] = {"type": "string"}
    return _compile(version, schema)


def _looks_like_datetime(value: str) -> bool:
    return len(value) >= 19 and value[4] == "-" and value[7] == "-" and value[10] in "Tt "


def _any_string(value: str) -> bool:
    return True


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
    """Raise :class:`SchemaViolation` with the spec's error code if ``payload`` is invalid.

    A charger's meter message that fails only on the words of its sampled values is
    made valid instead, keeping its sound readings (:mod:`ocpp_handlers.quirks`); that
    is tried only once the strict check failed, so valid messages pay nothing for it.
    """
    try:
        validator(version, action, response)(payload)
    except SchemaViolation:
        if response or action not in quirks.METER_LISTS:
            raise
        if not _valid_but_for_words(version, action, payload):
            raise  # a structural error: refused as it is
        quirks.tolerate(action, payload, sampled_value_enums(version, action))


def _valid_but_for_words(version: Version, action: str, payload: Any) -> bool:
    try:
        lenient_validator(version, action)(payload)
    except SchemaViolation:
        return False
    return True
