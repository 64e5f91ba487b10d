"""What every handler module shares: the context a handler runs in, its error type,
and parsing of the values both versions carry (timestamps)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.ids import ChargerId
from edge.site import Site
from ocpp_handlers.schemas import Version

Payload = dict[str, Any]


@dataclass(slots=True)
class HandlerContext:
    site: Site
    charger_id: ChargerId
    version: Version


class OcppError(Exception):
    """A message that passed its schema but cannot be accepted; answered as a CALLERROR."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


Handler = Callable[[HandlerContext, Payload], Awaitable[Payload]]


def parse_time(value: str, field: str) -> datetime:
    """An RFC 3339 timestamp from a charger; a naive one is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise OcppError("PropertyConstraintViolation", f"{field}: not an RFC 3339 time") from err
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def now_iso(site: Site) -> str:
    return site.clock().astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
