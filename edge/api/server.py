"""uvicorn as a task of the daemon's TaskGroup (no signal handling of its own), with the
limits of :mod:`edge.api.limits`: body sizes, connection caps, request and idle timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from edge.api.limits import (
    BodyLimit,
    ConnectionLimits,
    HttpLimitsCollector,
    limited_protocol,
    route_limits,
)
from edge.config import HttpSection


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The daemon owns SIGTERM/SIGINT and stops us through should_exit.
        yield


class HttpServer:
    def __init__(
        self,
        app: FastAPI,
        http: HttpSection,
        registry: CollectorRegistry | None = None,
        max_upload: int | None = None,
    ) -> None:
        self.limits = ConnectionLimits(
            max_connections=http.max_connections,
            max_per_client=http.max_connections_per_client,
            request_timeout=http.request_timeout,
        )
        self.bodies = BodyLimit(app, route_limits(http.max_body, http.max_login_body, max_upload))
        if registry is not None:
            registry.register(HttpLimitsCollector(self.limits, self.bodies))
        config = uvicorn.Config(
            self.bodies,
            host=http.host,
            port=http.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            http=limited_protocol(self.limits),
            # No websocket routes here: an upgrade request is a plain (404) request.
            ws="none",
            # The client is the socket's peer, never what a header says: the loopback
            # trust and the login throttle depend on it.
            proxy_headers=False,
            timeout_keep_alive=math.ceil(http.idle_timeout),
            # The connection cap answers 503 before a request is read; uvicorn's own
            # limit_concurrency would refuse every request once the cap is reached.
            limit_concurrency=None,
        )
        self._server = _Server(config)
        self.ready = asyncio.Event()

    @property
    def port(self) -> int:
        servers = self._server.servers
        return int(servers[0].sockets[0].getsockname()[1])

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._serve())
            while not self._server.started:
                if self._server.should_exit:
                    return
                await asyncio.sleep(0.01)
            self.ready.set()

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit as err:  # uvicorn's way to say it could not bind: not ours to exit
            config = self._server.config
            raise OSError(f"{config.host}:{config.port} could not be bound") from err

    def stop(self) -> None:
        self._server.should_exit = True
