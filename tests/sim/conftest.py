"""The charger simulator's tests run against :class:`tests.sim.csms.MiniCsms`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import Server, serve
from websockets.typing import Subprotocol

from tests.sim.csms import MiniCsms


@pytest.fixture
async def csms() -> AsyncIterator[MiniCsms]:
    mini = MiniCsms()
    server: Server
    async with serve(
        mini.handler,
        "127.0.0.1",
        0,
        subprotocols=[Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")],
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        mini.url = f"ws://127.0.0.1:{port}/ocpp"
        yield mini
    assert mini.violations == []
