"""Whole websocket frames out of a byte stream, and the one kind OCPP brings all the time.

websockets' sans-I/O protocol parses every frame with a chain of generators; for the
frame that carries nearly every OCPP message (one final, masked text frame) that costs
more than the rest of the transport together. The OCPP endpoint therefore cuts the
stream into whole frames itself (reading only their headers), decodes that one kind of
frame here, and hands every other frame to the protocol whole: control frames,
fragments, anything malformed. The protocol thus always sees whole frames and its state
(closing handshake, fragmentation, errors) stays its own.
"""

from __future__ import annotations

from typing import Final

try:  # websockets' C version, where it was built
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

_FINAL_TEXT: Final = 0x81  # FIN, no reserved bits (no extensions are negotiated), opcode 1
_MASKED: Final = 0x80


def frame_size(data: bytes | bytearray, start: int = 0) -> int | None:
    """Size of the whole frame at ``start`` (header included), None if its header is cut."""
    available = len(data) - start
    if available < 2:
        return None
    second = data[start + 1]
    length = second & 0x7F
    header = 2
    if length == 126:
        if available < 4:
            return None
        length = int.from_bytes(data[start + 2 : start + 4], "big")
        header = 4
    elif length == 127:
        if available < 10:
            return None
        length = int.from_bytes(data[start + 2 : start + 10], "big")
        header = 10
    if second & _MASKED:
        header += 4
    return header + length


def plain_text(frame: bytes) -> str | None:
    """The text of a final, masked text frame; None for any other frame (or bad UTF-8)."""
    if frame[0] != _FINAL_TEXT or not frame[1] & _MASKED:
        return None
    length = frame[1] & 0x7F
    offset = 2 if length < 126 else 4 if length == 126 else 10
    mask = frame[offset : offset + 4]
    try:
        return apply_mask(frame[offset + 4 :], mask).decode()
    except UnicodeDecodeError:
        return None  # the protocol fails the connection with 1007, as it should


def text_frame(text: str) -> bytes:
    """A server's (unmasked) final text frame."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((_FINAL_TEXT, size)) + payload
    if size < 1 << 16:
        return bytes((_FINAL_TEXT, 126)) + size.to_bytes(2, "big") + payload
    return bytes((_FINAL_TEXT, 127)) + size.to_bytes(8, "big") + payload
