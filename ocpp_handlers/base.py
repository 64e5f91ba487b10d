"""What every handler module shares: the context a handler runs in, its error type,
and parsing of the values both versions carry (timestamps)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from common.timestamps import InvalidTimestamp, parse_timestamp
from edge.core.ids import ChargerId
from edge.core.model import BootStatus
from edge.core.site_port import SitePort
from ocpp_handlers import quirks
from ocpp_handlers.schemas import Version

Payload = dict[str, Any]


@dataclass(slots=True)
class HandlerContext:
    site: SitePort
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
    """An RFC 3339 timestamp from a charger, in UTC; a naive one is taken as UTC (some
    chargers send one). A bad one is the CALLERROR the spec names for a bad value."""
    try:
        return parse_timestamp(value, naive_is_utc=True)
    except InvalidTimestamp as err:
        raise OcppError("PropertyConstraintViolation", f"{field}: {err.reason}") from err


def boot_interval(ctx: HandlerContext, status: BootStatus) -> int:
    """A boot answer's interval: the heartbeat's once accepted, else when to boot again."""
    site = ctx.site
    return site.heartbeat_interval if status is BootStatus.ACCEPTED else site.pending_interval


def now_iso(site: SitePort) -> str:
    return site.clock().astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def note_quirks(ctx: HandlerContext, action: str, p: Payload) -> None:
    """Report what :func:`ocpp_handlers.quirks.tolerate` changed in a meter message, if
    anything (a dict lookup for every other message)."""
    if quirks.QUIRKS_KEY in p:
        quirks.report(ctx.site.site_id, ctx.charger_id, action, p.pop(quirks.QUIRKS_KEY))
