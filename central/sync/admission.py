"""Admission to the sync ingest: a few uploads stored at once, a bounded queue behind them.

Overloaded, a process that takes every upload slows all of them until none ends within
the edges' timeout (they send again: more work). With a bound it finishes those it took
and tells the others to come back (503 with ``Retry-After``), which edges honour.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Overloaded(Exception):
    """No room for this upload now: come back after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy: come back in {retry_after} s")
        self.retry_after = retry_after


class Admission:
    def __init__(self, concurrency: int, queue: int, retry_after: int = 2) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._queue = queue
        self._waiting = 0
        self._retry_after = retry_after

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the slots while the upload is stored; :class:`Overloaded` at once
        when every slot is taken and the queue is full."""
        if self._slots.locked() and self._waiting >= self._queue:
            raise Overloaded(self._retry_after)
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()
