"""A bare websockets server that answers every OCPP CALL like a do-nothing CSMS.

It is the yardstick of the saturation benchmark: the same connections, frames and
subprotocols as the edge daemon, but each answer is only ``[3,"<message id>",{}]`` (the
exact size of the edge's CALLRESULT to MeterValues), built from the message id and
nothing else. No JSON parsing, no validation, no storage.

    python -m bench.echo_server --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

if __package__ in (None, ""):  # run as `python bench/echo_server.py`, as the bench does
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.event_loop import loop_factory

SUBPROTOCOLS = [Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")]


def answer(frame: bytes) -> bytes | None:
    """``[3,"<id>",{}]`` for a CALL ``[2,"<id>",...]``; None for anything else."""
    # A CALL starts with `[2,"`; the id has no quote in it (it is at most 36 characters).
    start = frame.find(b'"')
    if start < 0 or frame[1:start].strip(b" \t\r\n,") != b"2":
        return None
    end = frame.find(b'"', start + 1)
    if end < 0:
        return None
    return b'[3,"' + frame[start + 1 : end] + b'",{}]'


async def _handle(connection: ServerConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            frame = await connection.recv(decode=False)
            if isinstance(frame, str):  # only with decode=True; keeps the type checker calm
                frame = frame.encode()
            reply = answer(frame)
            if reply is not None:
                await connection.send(reply, text=True)


async def serve_forever(host: str, port: int, ready: asyncio.Event | None = None) -> None:
    """Serve until cancelled or SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    async with serve(
        _handle,
        host,
        port,
        subprotocols=SUBPROTOCOLS,
        compression=None,
        ping_interval=None,
        max_queue=None,
    ) as server:
        bound = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in server.sockets)
        sys.stdout.write(f"echo server listening on {bound}\n")
        sys.stdout.flush()
        if ready is not None:
            ready.set()
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument(
        "--event-loop",
        choices=["auto", "uvloop", "asyncio"],
        default="auto",
        help="as the edge's [runtime] event_loop (default: uvloop when installed)",
    )
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=loop_factory(args.event_loop)) as runner:
        runner.run(serve_forever(args.host, args.port))


if __name__ == "__main__":
    main()
