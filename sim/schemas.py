"""Schema checks of the simulator's frames, in the simulator's terms.

Every frame the simulator sends (its own calls and its answers to the central system's
calls) is checked against the official schema of its protocol version before it leaves,
with the same compiled validators the edge uses (:mod:`ocpp_handlers.schemas`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from ocpp_handlers.schemas import SchemaViolation as OcppSchemaViolation
from ocpp_handlers.schemas import Version, known_actions, validator

OcppVersion = Literal["1.6", "2.0.1"]
Kind = Literal["request", "response"]


class SchemaViolation(ValueError):
    """A payload does not validate against the official schema of its action."""

    def __init__(self, version: OcppVersion, action: str, kind: Kind, message: str) -> None:
        self.version = version
        self.action = action
        self.kind = kind
        super().__init__(f"OCPP {version} {action} {kind}: {message}")


class UnknownAction(LookupError):
    """The protocol version has no schema (hence no message) of that name."""


_VERSIONS = {"1.6": Version.V16, "2.0.1": Version.V201}


def _validator(version: OcppVersion, action: str, kind: Kind) -> Callable[[Any], Any]:
    try:
        return validator(_VERSIONS[version], action, kind == "response")
    except KeyError as err:
        raise UnknownAction(f"OCPP {version} has no action {action!r}") from err


def has_action(version: OcppVersion, action: str) -> bool:
    return action in known_actions(_VERSIONS[version])


def validate(version: OcppVersion, action: str, kind: Kind, payload: dict[str, Any]) -> None:
    """Raise :class:`SchemaViolation` unless ``payload`` is valid; :class:`UnknownAction`
    when the version has no such action."""
    check = _validator(version, action, kind)
    try:
        check(payload)
    except OcppSchemaViolation as err:
        raise SchemaViolation(version, action, kind, str(err)) from err
