"""Event bus contract shared by central's services.

Topics are ``parking.events`` and ``charging.events`` (see :mod:`contract.sync_api`). Delivery
is at-least-once: a handler may see the same event again (after a crash or a NATS
redelivery) and must be idempotent by ``event.id``. A handler that raises gets the event
redelivered later; the in-process bus retries with backoff, JetStream by its ack policy.

Events are handed over in batches where there are several waiting: a consumer that
gives a :data:`BatchHandler` gets up to ``batch_size`` events of a topic in publish
order and applies them with as few statements and transactions as it can (analytics:
one transaction; charging: a run of progress updates in one). If the batch handler
raises, the bus hands the same events to the per-event handler one by one, so one bad
event is retried and dead-lettered alone and the others are applied; what the batch
applied before it failed is applied again, which handlers, idempotent by event id,
ignore.

Implementations: the in-process bus (default, one process) and NATS JetStream with
durable consumers (at scale); both live next to this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol

from contract.envelope import CloudEvent

EventHandler = Callable[[CloudEvent], Awaitable[None]]
BatchHandler = Callable[[Sequence[CloudEvent]], Awaitable[None]]

BATCH_SIZE: Final = 500  # events handed to a batch handler at most


class Bus(Protocol):
    async def publish(self, topic: str, event: CloudEvent) -> None:
        """Publish durably: when this returns, the event will reach every subscriber."""
        ...

    async def publish_many(self, topic: str, events: Sequence[CloudEvent]) -> None:
        """Publish several events in order, durably, without a round trip per event."""
        ...

    async def subscribe(
        self,
        topic: str,
        durable: str,
        handler: EventHandler,
        batch_handler: BatchHandler | None = None,
        types: frozenset[str] | None = None,
    ) -> None:
        """Register ``handler`` as the durable consumer ``durable`` of ``topic``.

        Consumers of the same ``durable`` name share the work; different names each get
        every event. Delivery starts when the bus is running and stops when it closes.
        ``batch_handler``, if given, gets the events when several are waiting; ``types``,
        if given, are the only event types the consumer is handed (the others are
        passed over unread, as handled).
        """
        ...
