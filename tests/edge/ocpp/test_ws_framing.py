"""The OCPP endpoint's websocket framing over a raw TCP socket, chunked as the test likes.

The endpoint cuts the byte stream into frames itself and decodes plain text frames on
its own (edge/ocpp/frames.py); everything else goes to websockets' protocol. These cases
cut the stream where real networks do, and send what real chargers sometimes send.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from edge.daemon import EdgeDaemon

HEARTBEAT = '[2,"{id}","Heartbeat",{{}}]'


class RawClient:
    """A websocket client whose bytes go out exactly as the test cuts them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.protocol = ClientProtocol(
            parse_uri("ws://127.0.0.1/ocpp/CP-RAW"), subprotocols=[Subprotocol("ocpp1.6")]
        )
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()

    async def handshake(self) -> None:
        self.protocol.send_request(self.protocol.connect())
        await self.send(b"".join(self.protocol.data_to_send()))
        while True:
            events = await self._receive()
            if any(isinstance(e, Response) for e in events):
                return

    def frame(self, opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
        return Frame(opcode, data, fin).serialize(mask=True, extensions=[])

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def _receive(self) -> list[object]:
        data = await self.reader.read(65536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        events = self.protocol.events_received()
        for event in events:
            if isinstance(event, Frame):
                self.frames.put_nowait(event)
        return events

    async def next_frame(self) -> Frame:
        async with asyncio.timeout(10):
            while self.frames.empty():
                await self._receive()
            return self.frames.get_nowait()

    async def answer_id(self) -> str:
        frame = await self.next_frame()
        assert frame.opcode is Opcode.TEXT, frame
        message = json.loads(frame.data)
        assert message[0] == 3, message
        return str(message[1])


@pytest.fixture
async def client(edge: EdgeDaemon) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.ocpp_port)
    raw = RawClient(reader, writer)
    await raw.handshake()
    yield raw
    writer.close()


async def test_a_frame_cut_into_single_bytes_is_answered(client: RawClient) -> None:
    frame = client.frame(Opcode.TEXT, HEARTBEAT.format(id="b1").encode())
    for i in range(len(frame)):
        await client.send(frame[i : i + 1])
    assert await client.answer_id() == "b1"


async def test_frames_sharing_chunks_are_answered_in_order(client: RawClient) -> None:
    stream = b"".join(
        client.frame(Opcode.TEXT, HEARTBEAT.format(id=f"c{n}").encode()) for n in range(4)
    )
    cut = len(stream) - 7  # the last frame arrives in two pieces
    await client.send(stream[:cut])
    await asyncio.sleep(0.05)
    await client.send(stream[cut:])
    assert [await client.answer_id() for _ in range(4)] == ["c0", "c1", "c2", "c3"]


async def test_a_ping_gets_its_pong_and_a_fragmented_message_is_read_whole(
    client: RawClient,
) -> None:
    await client.send(client.frame(Opcode.PING, b"are you there"))
    pong = await client.next_frame()
    assert (pong.opcode, pong.data) == (Opcode.PONG, b"are you there")
    text = HEARTBEAT.format(id="f1").encode()
    await client.send(
        client.frame(Opcode.TEXT, text[:10], fin=False)
        + client.frame(Opcode.CONT, text[10:20], fin=False)
        + client.frame(Opcode.PING, b"meanwhile")  # control frames may interleave
        + client.frame(Opcode.CONT, text[20:])
    )
    assert (await client.next_frame()).opcode is Opcode.PONG
    assert await client.answer_id() == "f1"
    # and after the fragments, plain frames again
    await client.send(client.frame(Opcode.TEXT, HEARTBEAT.format(id="f2").encode()))
    assert await client.answer_id() == "f2"


async def test_text_that_is_not_utf8_closes_with_1007(client: RawClient) -> None:
    await client.send(client.frame(Opcode.TEXT, b'[2,"u1","Heartbeat",{}]\xff'))
    close = await client.next_frame()
    assert close.opcode is Opcode.CLOSE
    assert Close.parse(close.data).code == CloseCode.INVALID_DATA


async def test_a_frame_over_the_size_limit_closes_with_1009(client: RawClient) -> None:
    header = client.frame(Opcode.TEXT, b"x" * 70_000)[:14]  # 64-bit length, masked
    too_big = bytes((0x81, 0xFF)) + (1 << 20).to_bytes(8, "big") + header[10:14]
    await client.send(too_big + b"x" * 1000)
    close = await client.next_frame()
    assert close.opcode is Opcode.CLOSE
    assert Close.parse(close.data).code == CloseCode.MESSAGE_TOO_BIG
