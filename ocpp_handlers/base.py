"""What every handler module shares: the context a handler runs in, its error type,
and parsing of the values both versions carry (timestamps)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from edge.core.ids import ChargerId
from edge.services.site import Site
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


class Answer(NamedTuple):
    """An answer made without waiting, to be sent once ``stored`` (its write) is committed.

    The handlers of the messages that come all the time (meter values) return this
    instead of being coroutines: the connection then needs no task per message.
    """

    payload: Payload
    stored: asyncio.Future[None] | None = None


# A coroutine function for most actions; a plain function returning an Answer for the
# frequent ones (see Answer).
Handler = Callable[[HandlerContext, Payload], Awaitable[Payload] | Answer]


def parse_time(value: str, field: str) -> datetime:
    """An RFC 3339 timestamp from a charger; a naive one is taken as UTC.

    RFC 3339 allows a lower-case "t" and "z" and a leap second (":60"), which Python's
    parser does not: the first are read as upper case, a leap second as the next one.
    """
    text = value.upper()
    leap = text[16:19] == ":60"
    if leap:
        text = f"{text[:17]}59{text[19:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise OcppError("PropertyConstraintViolation", f"{field}: not an RFC 3339 time") from err
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:  # year 1 at +14:00 or year 9999 at -14:00 has no UTC time a datetime can hold
        if leap:
            moment = moment.replace(microsecond=0) + timedelta(seconds=1)
        moment.astimezone(UTC)
    except OverflowError as err:
        raise OcppError(
            "PropertyConstraintViolation", f"{field}: out of the range of a time"
        ) from err
    return moment


def now_iso(site: Site) -> str:
    return site.clock().astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
