"""uvicorn as a task of the daemon's TaskGroup (no signal handling of its own)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The daemon owns SIGTERM/SIGINT and stops us through should_exit.
        yield


class HttpServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = _Server(config)
        self.ready = asyncio.Event()

    @property
    def port(self) -> int:
        servers = self._server.servers
        return int(servers[0].sockets[0].getsockname()[1])

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._server.serve())
            while not self._server.started:
                if self._server.should_exit:
                    return
                await asyncio.sleep(0.01)
            self.ready.set()

    def stop(self) -> None:
        self._server.should_exit = True
