"""Routing a bus event to a service's handler for its type.

Every service handles a few event types and ignores the rest. An event whose ``data``
does not fit its type is logged and dropped: redelivering it would not make it fit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import structlog
from pydantic import ValidationError

from contract.envelope import CloudEvent
from contract.events import Data, parse_data

log = structlog.get_logger("central.event_routing")
EventHandler = Callable[[CloudEvent], Awaitable[None]]
D = TypeVar("D", bound=Data)


async def dispatch(event: CloudEvent, handlers: Mapping[str, EventHandler], service: str) -> bool:
    """Run the handler of ``event.type``; True if one ran and the event was valid."""
    handler = handlers.get(event.type)
    if handler is None:
        return False
    try:
        await handler(event)
    except ValidationError as err:
        log.error(f"{service}.event.invalid", event_id=event.id, type=event.type, error=str(err))
        return False
    return True


def valid_data(model: type[D], event: CloudEvent, service: str) -> D | None:
    """The event's data as ``model``, or None, logged as :func:`dispatch` logs it (for
    handlers that take many events of a type at once)."""
    try:
        return parse_data(model, event)
    except ValidationError as err:
        log.error(f"{service}.event.invalid", event_id=event.id, type=event.type, error=str(err))
        return None
