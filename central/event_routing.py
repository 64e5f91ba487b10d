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

log = structlog.get_logger("central.event_routing")
EventHandler = Callable[[CloudEvent], Awaitable[None]]
T = TypeVar("T")


async def dispatch(event: CloudEvent, handlers: Mapping[str, EventHandler], service: str) -> bool:
    """Run the handler of ``event.type``; True if one ran and the event was valid."""
    handler = handlers.get(event.type)
    if handler is None:
        return False
    try:
        await handler(event)
    except ValidationError as err:
        _invalid(service, event, err)
        return False
    return True


def read_valid(read: Callable[[CloudEvent], T], event: CloudEvent, service: str) -> T | None:
    """What ``read`` makes of the event, or None if it does not fit, logged as
    :func:`dispatch` logs it (for handlers that take many events of a type at once)."""
    try:
        return read(event)
    except ValidationError as err:
        _invalid(service, event, err)
        return None


def _invalid(service: str, event: CloudEvent, err: ValidationError) -> None:
    log.error(f"{service}.event.invalid", event_id=event.id, type=event.type, error=str(err))
