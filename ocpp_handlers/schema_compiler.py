"""Compile an OCPP JSON schema into one plain Python function.

The OCPP 1.6 and 2.0.1 schemas use a small part of JSON Schema: ``type``, ``properties``,
``required``, ``additionalProperties: false``, ``enum``, ``maxLength``, ``items``,
``minItems``/``maxItems``, ``minimum``/``maximum``/``multipleOf``, ``format`` and local
``$ref``. For exactly that part this writes straight-line code (exact type checks on
what the JSON decoder returns, enums as frozensets, unknown keys as one set comparison),
several times faster than a general validator. A schema that uses anything else is
refused with :class:`Unsupported`, and the caller uses a general validator instead.

Integers are bounded to the signed 64-bit range (what SQLite stores and what every OCPP
integer field fits in) even where a schema sets no ``minimum``/``maximum``: JSON has no
integer size, and one charger's ``connectorId`` of 2**63 must be refused as a
PropertyConstraintViolation here, not fail somewhere between the handler and the disk.

A failed check raises :class:`~ocpp_handlers.schemas.SchemaViolation`-like errors through
the ``fail(code_kind, description)`` callable handed in, so the CALLERROR code follows
the kind of failure (type, occurrence, formation, property).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

IGNORED: Final = frozenset(
    {"description", "javaType", "$schema", "$id", "comment", "title", "default", "additionalItems"}
)
HANDLED: Final = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "enum", "maxLength",
        "items", "minItems", "maxItems", "minimum", "maximum", "multipleOf", "format",
        "$ref", "definitions",
    }
)  # fmt: skip
_TYPES: Final = {
    "string": "str",
    "integer": "int",
    "number": "(int, float)",
    "boolean": "bool",
    "array": "list",
    "object": "dict",
    "null": "type(None)",
}

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1

Fail = Callable[[str, str], Exception]
Check = Callable[[Any], None]


class Unsupported(Exception):
    """The schema uses JSON Schema beyond what this compiler writes code for."""


class _Writer:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self.counter = 0

    def constant(self, value: Any) -> str:
        name = f"K{len(self.constants)}"
        self.constants[name] = value
        return name

    def var(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if ref is None:
            return node
        if not isinstance(ref, str) or not ref.startswith("#/definitions/"):
            raise Unsupported(f"$ref {ref!r}")
        target = self.root.get("definitions", {}).get(ref.removeprefix("#/definitions/"))
        if not isinstance(target, dict):
            raise Unsupported(f"unresolved $ref {ref!r}")
        return self.resolve(target)

    def node(self, node: dict[str, Any], var: str, path: str, depth: int, nesting: int) -> None:
        """Code that checks ``var`` (at ``path``, an f-string body) against ``node``."""
        if nesting > 20:
            raise Unsupported("schema nests too deep (recursive $ref?)")
        node = self.resolve(node)
        unknown = set(node) - HANDLED - IGNORED
        if unknown:
            raise Unsupported(f"keywords {sorted(unknown)}")
        kind = node.get("type")
        if kind is not None:
            kinds = kind if isinstance(kind, list) else [kind]
            if any(k not in _TYPES for k in kinds):
                raise Unsupported(f"type {kind!r}")
            python = ", ".join(_TYPES[k] for k in kinds)
            if kinds == ["integer"]:
                test = f"type({var}) is not int"
            elif kinds == ["number"]:
                test = f"type({var}) not in (int, float)"
            elif len(kinds) == 1:
                test = f"type({var}) is not {python}"
            else:
                test = f"not isinstance({var}, ({python},)) or type({var}) is bool"
            self.emit(depth, f"if {test}:")
            self.emit(depth + 1, f'raise fail("type", f"{path}: must be {" or ".join(kinds)}")')
            if "integer" in kinds or "number" in kinds:
                self.emit(depth, f"if type({var}) is int and not {INT_MIN} <= {var} <= {INT_MAX}:")
                self.emit(
                    depth + 1,
                    f'raise fail("property", f"{path}: outside the 64-bit integer range")',
                )
        if "enum" in node:
            values = self.constant(frozenset(node["enum"]))
            shown = ", ".join(map(str, node["enum"]))[:200]
            self.emit(depth, f"if {var} not in {values}:")
            self.emit(depth + 1, f'raise fail("property", f"{path}: must be one of {shown}")')
        if "maxLength" in node:
            limit = int(node["maxLength"])
            self.emit(depth, f"if type({var}) is str and len({var}) > {limit}:")
            self.emit(depth + 1, f'raise fail("property", f"{path}: longer than {limit}")')
        if "format" in node:
            check = self.constant(node["format"])
            self.emit(depth, f"if type({var}) is str and not formats[{check}]({var}):")
            self.emit(depth + 1, f'raise fail("property", f"{path}: must be {node["format"]}")')
        for keyword, operator in (("minimum", "<"), ("maximum", ">")):
            if keyword in node:
                bound = self.constant(node[keyword])
                self.emit(depth, f"if type({var}) in (int, float) and {var} {operator} {bound}:")
                self.emit(
                    depth + 1,
                    f'raise fail("property", f"{path}: must be {"at least" if operator == "<" else "at most"} {node[keyword]}")',
                )
        if "multipleOf" in node:
            step = self.constant(node["multipleOf"])
            self.emit(depth, f"if type({var}) in (int, float) and not multiple({var}, {step}):")
            self.emit(
                depth + 1,
                f'raise fail("property", f"{path}: must be a multiple of {node["multipleOf"]}")',
            )
        if "properties" in node or "required" in node or node.get("additionalProperties") is False:
            self._object(node, var, path, depth, nesting)
        if "items" in node or "minItems" in node or "maxItems" in node:
            self._array(node, var, path, depth, nesting)

    def _object(self, node: dict[str, Any], var: str, path: str, depth: int, nesting: int) -> None:
        properties: dict[str, Any] = node.get("properties", {})
        self.emit(depth, f"if type({var}) is dict:")
        inner = depth + 1
        required = node.get("required", [])
        if required:
            names = self.constant(tuple(required))
            self.emit(inner, f"for key in {names}:")
            self.emit(inner + 1, f"if key not in {var}:")
            self.emit(inner + 2, f'raise fail("occurrence", f"{path}: must contain {{key}}")')
        for name, child in properties.items():
            if not isinstance(child, dict):
                raise Unsupported(f"property {name!r}")
            item = self.var()
            key = self.constant(name)
            child_path = f"{path}.{name}" if path != "payload" else name
            self.emit(inner, f"{item} = {var}.get({key}, MISSING)")
            self.emit(inner, f"if {item} is not MISSING:")
            before = len(self.lines)
            self.node(child, item, child_path, inner + 1, nesting + 1)
            if len(self.lines) == before:
                self.emit(inner + 1, "pass")
        # unknown keys last: a known key of the wrong type is reported as such first
        if node.get("additionalProperties") is False:
            allowed = self.constant(frozenset(properties))
            self.emit(inner, f"if not {var}.keys() <= {allowed}:")
            self.emit(
                inner + 1,
                f'raise fail("formation", f"{path}: must not contain {{sorted(set({var}) - {allowed})}}")',
            )
        elif "additionalProperties" in node and node["additionalProperties"] is not True:
            raise Unsupported("additionalProperties with a schema")

    def _array(self, node: dict[str, Any], var: str, path: str, depth: int, nesting: int) -> None:
        self.emit(depth, f"if type({var}) is list:")
        inner = depth + 1
        if "minItems" in node:
            least = int(node["minItems"])
            self.emit(inner, f"if len({var}) < {least}:")
            self.emit(
                inner + 1, f'raise fail("occurrence", f"{path}: needs at least {least} items")'
            )
        if "maxItems" in node:
            most = int(node["maxItems"])
            self.emit(inner, f"if len({var}) > {most}:")
            self.emit(inner + 1, f'raise fail("occurrence", f"{path}: has more than {most} items")')
        items = node.get("items")
        if isinstance(items, dict):
            index = self.var()
            item = self.var()
            self.emit(inner, f"for {index}, {item} in enumerate({var}):")
            before = len(self.lines)
            self.node(items, item, f"{path}[{{{index}}}]", inner + 1, nesting + 1)
            if len(self.lines) == before:
                self.emit(inner + 1, "pass")
        elif items is not None:
            raise Unsupported("items as a list")


def _multiple(value: float, step: float) -> bool:
    try:
        quotient = value / step
        return int(quotient) == quotient or abs(quotient - round(quotient)) < 1e-9
    except (OverflowError, ZeroDivisionError):
        return False


_MISSING: Final = object()


def compile_schema(
    schema: dict[str, Any], fail: Fail, formats: dict[str, Callable[[str], bool]]
) -> Check:
    """The check function of ``schema``; raises :class:`Unsupported` for other schemas."""
    writer = _Writer(schema)
    writer.emit(0, "def check(data):")
    before = len(writer.lines)
    writer.node(schema, "data", "payload", 1, 0)
    if len(writer.lines) == before:
        writer.emit(1, "pass")
    namespace: dict[str, Any] = {
        **writer.constants,
        "fail": fail,
        "formats": formats,
        "multiple": _multiple,
        "MISSING": _MISSING,
    }
    exec(compile("\n".join(writer.lines), "<ocpp schema>", "exec"), namespace)
    check: Check = namespace["check"]
    return check
