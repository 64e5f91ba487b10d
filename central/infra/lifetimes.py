"""Background work with an owner: a service's loops live in one TaskGroup.

``start()`` enters the group, ``supervise()`` runs a loop that is restarted with backoff
and jitter when it fails, ``stop()`` cancels the loops and waits for them. Start and stop
are called from the same task (the ASGI lifespan).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from common.backoff import Backoff

log = structlog.get_logger("central.infra.lifetimes")


class Background:
    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()

    def supervise(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run ``loop()`` until stopped; when it raises, log, back off and run it again."""
        assert self._group is not None, "start() first"
        self._tasks.append(self._group.create_task(self._run(name, loop), name=name))

    async def _run(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        # never reset: a loop that returned is done, so every restart follows a failure
        backoff = Backoff(base=0.5, cap=30.0)
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - supervised: log, back off, restart
                delay = backoff.next_delay()
                log.error(
                    "background.loop.failed",
                    owner=self._owner,
                    loop=name,
                    error=repr(err),
                    restart_in=round(delay, 2),
                )
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        if self._group is None:
            return
        for task in self._tasks:
            task.cancel()
        await self._group.__aexit__(None, None, None)
        self._group = None
        self._tasks.clear()
