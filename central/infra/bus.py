"""Event bus contract shared by central's services.

Topics are ``parking.events`` and ``charging.events`` (see :mod:`contract.sync_api`). Delivery
is at-least-once: a handler may see the same event again (after a crash or a NATS
redelivery) and must be idempotent by ``event.id``. A handler that raises gets the event
redelivered later; the in-process bus retries with backoff, JetStream by its ack policy.

Implementations: the in-process bus (default, one process) and NATS JetStream with
durable consumers (at scale); both live next to this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from contract.envelope import CloudEvent

EventHandler = Callable[[CloudEvent], Awaitable[None]]


class Bus(Protocol):
    async def publish(self, topic: str, event: CloudEvent) -> None:
        """Publish durably: when this returns, the event will reach every subscriber."""
        ...

    async def subscribe(self, topic: str, durable: str, handler: EventHandler) -> None:
        """Register ``handler`` as the durable consumer ``durable`` of ``topic``.

        Consumers of the same ``durable`` name share the work; different names each get
        every event. Delivery starts when the bus is running and stops when it closes.
        """
        ...
