"""The charger's transaction-message queue.

Every transaction-related message (1.6 StartTransaction, MeterValues of a transaction,
StopTransaction; 2.0.1 TransactionEvent) goes through this queue, online or not, so
order is kept across disconnections: the sender delivers the head, removes it only once
the central system answered, and stops at a dropped connection with the head still in
place. The queue is bounded like a charger's flash: when full, the oldest periodic meter
value is dropped first; start and stop messages are never dropped for room.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class QueuedMessage:
    action: str
    payload: dict[str, Any]
    # Local transaction key: the 1.6 sender rewrites transactionId from it at send time.
    tx_key: str
    # Periodic samples may be dropped when the queue is full; starts and stops may not.
    droppable: bool = False
    generated_offline: bool = False
    attempts: int = 0
    delivered: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class OfflineQueue:
    def __init__(self, max_items: int = 1000) -> None:
        self._items: deque[QueuedMessage] = deque()
        self._max = max_items
        self._nonempty = asyncio.Event()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[QueuedMessage]:
        return list(self._items)

    def append(self, message: QueuedMessage) -> None:
        if len(self._items) >= self._max:
            victim = next((m for m in self._items if m.droppable), None)
            if victim is not None:
                self._items.remove(victim)
                victim.delivered.cancel()
                self.dropped += 1
        self._items.append(message)
        self._nonempty.set()

    async def head(self) -> QueuedMessage:
        """The oldest message, waiting for one."""
        while not self._items:
            self._nonempty.clear()
            await self._nonempty.wait()
        return self._items[0]

    def pop(self, message: QueuedMessage, response: dict[str, Any] | None) -> None:
        """Remove ``message`` (the head): delivered with ``response``, or given up on."""
        if self._items and self._items[0] is message:
            self._items.popleft()
        if not message.delivered.done():
            if response is None:
                message.delivered.cancel()
            else:
                message.delivered.set_result(response)

    async def drained(self) -> None:
        """Wait until every queued message has been delivered or given up on."""
        while self._items:
            last = self._items[-1]
            await asyncio.wait([last.delivered])
