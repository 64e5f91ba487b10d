"""A raw OCPP-J test client: sends exactly what a test says (malformed frames too),
answers the central system's CALLs from a table, and checks every answer it gets
against the official schema of its version."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Callable
from types import TracebackType
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from ocpp_handlers.schemas import Version, validate

Payload = dict[str, Any]
Responder = Callable[[str, Payload], Payload]


class CallErrorReceived(Exception):
    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


class RawCharger:
    def __init__(
        self,
        url: str,
        charger_id: str,
        version: Version,
        password: str | None = None,
        responder: Responder | None = None,
        silent: bool = False,
    ) -> None:
        self.url = f"{url}/{charger_id}"
        self.charger_id = charger_id
        self.version = version
        self.password = password
        self.responder = responder or (lambda action, payload: {"status": "Accepted"})
        self.silent = silent  # a charger that never answers the central system
        self.received_calls: list[tuple[str, Payload]] = []
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[list[Any]]] = {}
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RawCharger:
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.charger_id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self._ws = await websockets.connect(
            self.url,
            subprotocols=[self.version.value],
            additional_headers=headers,  # type: ignore[list-item]
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    @property
    def ws(self) -> ClientConnection:
        assert self._ws is not None
        return self._ws

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = orjson.loads(raw)
            if frame[0] == 2:
                _, unique_id, action, payload = frame
                self.received_calls.append((action, payload))
                if self.silent:
                    continue
                answer = self.responder(action, payload)
                validate(self.version, action, answer, response=True)
                await self.ws.send(orjson.dumps([3, unique_id, answer]).decode())
                continue
            future = self._pending.pop(frame[1], None)
            if future is not None and not future.done():
                future.set_result(frame)
            elif frame[1] == "-1":
                # an error about a frame whose id could not be read
                for waiting in list(self._pending.values()):
                    if not waiting.done():
                        waiting.set_result(frame)
                self._pending.clear()

    async def send_raw(self, text: str, unique_id: str = "-1") -> list[Any]:
        """Send any text; return the frame that answers ``unique_id``."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[unique_id] = future
        await self.ws.send(text)
        async with asyncio.timeout(10):
            return await future

    async def call(self, action: str, payload: Payload) -> Payload:
        unique_id = str(next(self._ids))
        frame = await self.send_raw(
            orjson.dumps([2, unique_id, action, payload]).decode(), unique_id
        )
        if frame[0] == 4:
            raise CallErrorReceived(frame[2], frame[3])
        assert frame[0] == 3, frame
        validate(self.version, action, frame[2], response=True)
        result: Payload = frame[2]
        return result
