"""The lean websocket server on its own, on port 0: a request check that raises is
answered (500) instead of dropping the client, and the server goes on."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import websockets
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from edge.ocpp.websocket import LeanConnection, LeanServer

OCPP16 = [Subprotocol("ocpp1.6")]


async def _echo(connection: LeanConnection) -> None:
    connection.attach(connection.send_now)
    await connection.wait_closed()


def _check(connection: LeanConnection, request: Request) -> Response | None:
    if "X-Boom" in request.headers:
        raise RuntimeError("a bug in the request check")
    return None


def _select(connection: LeanConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    return next((p for p in offered if p == "ocpp1.6"), None)


async def test_a_request_check_that_raises_gets_500_and_the_server_goes_on() -> None:
    async with LeanServer(
        _echo,
        "127.0.0.1",
        0,
        subprotocols=[Subprotocol("ocpp1.6")],
        select_subprotocol=_select,
        process_request=_check,
        ping_interval=None,
        ping_timeout=None,
        max_size=65536,
    ) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(url, subprotocols=OCPP16, additional_headers={"X-Boom": "1"})
        assert refused.value.response.status_code == 500
        async with websockets.connect(url, subprotocols=OCPP16) as ws:
            await ws.send("still here")
            assert await ws.recv() == "still here"
