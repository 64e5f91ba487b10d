"""A streaming reader of the one file in a ``multipart/form-data`` body (RFC 7578), as
chargers POST their logs: fed the body in chunks, it gives back the file's bytes as they
come and never holds more than a part's headers and a delimiter's length of it."""

from __future__ import annotations

import re
from enum import Enum, auto
from typing import Final

MAX_HEADERS: Final = 16 * 1024
MAX_PREAMBLE: Final = 16 * 1024
_FILENAME: Final = re.compile(rb'filename="([^"]*)"|filename=([^;\s]+)', re.IGNORECASE)
_BOUNDARY: Final = re.compile(r'boundary="?([^";]{1,70})"?', re.IGNORECASE)


class MultipartError(ValueError):
    """The body is not a multipart body with one complete file."""


def boundary_of(content_type: str) -> str | None:
    """The boundary of a ``multipart/form-data`` content type, None for any other type."""
    if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
        return None
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise MultipartError("multipart/form-data without a boundary")
    return found.group(1)


class _State(Enum):
    PREAMBLE = auto()
    HEADERS = auto()
    BODY = auto()
    AFTER_DELIMITER = auto()
    DONE = auto()


class MultipartFile:
    """Feed the body with :meth:`feed`, then call :meth:`finish`. The first part with a
    ``filename`` is the file; other parts (form fields) are skipped."""

    def __init__(self, boundary: str) -> None:
        self._first = b"--" + boundary.encode("latin-1")
        self._delimiter = b"\r\n" + self._first
        self._state = _State.PREAMBLE
        self._buffer = b""
        self._in_file = False
        self.filename: str | None = None

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    def feed(self, chunk: bytes) -> bytes:
        """The file's bytes found in ``chunk`` (and what was held back before it)."""
        self._buffer += chunk
        out: list[bytes] = []
        while self._step(out):
            pass
        return b"".join(out)

    def finish(self) -> None:
        if self._state is not _State.DONE:
            raise MultipartError("the body ended before its file did")

    def _step(self, out: list[bytes]) -> bool:
        """One move of the state machine; False when it needs more input."""
        buf = self._buffer
        match self._state:
            case _State.PREAMBLE:
                at = buf.find(self._first)
                if at < 0:
                    if len(buf) > MAX_PREAMBLE:
                        raise MultipartError("no multipart boundary where one was expected")
                    return False
                self._buffer = buf[at + len(self._first) :]
                self._state = _State.AFTER_DELIMITER
            case _State.AFTER_DELIMITER:
                if len(buf) < 2:
                    return False
                if buf.startswith(b"--"):
                    raise MultipartError("the body has no file part")
                if not buf.startswith(b"\r\n"):
                    raise MultipartError("a boundary is not followed by a line end")
                self._buffer = buf[2:]
                self._state = _State.HEADERS
            case _State.HEADERS:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEADERS:
                        raise MultipartError("a part's headers are too long")
                    return False
                self._in_file = self._read_headers(buf[:end])
                self._buffer = buf[end + 4 :]
                self._state = _State.BODY
            case _State.BODY:
                at = buf.find(self._delimiter)
                if at < 0:
                    keep = len(self._delimiter) - 1
                    if len(buf) > keep:
                        if self._in_file:
                            out.append(buf[:-keep])
                        self._buffer = buf[-keep:]
                    return False
                if self._in_file:
                    out.append(buf[:at])
                    self._buffer = b""
                    self._state = _State.DONE  # the rest (epilogue, more parts) is not read
                    return False
                self._buffer = buf[at + len(self._delimiter) :]
                self._state = _State.AFTER_DELIMITER
            case _State.DONE:
                self._buffer = b""
                return False
        return True

    def _read_headers(self, raw: bytes) -> bool:
        for line in raw.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-disposition":
                found = _FILENAME.search(value)
                if found is not None:
                    name_bytes = found.group(1) if found.group(1) is not None else found.group(2)
                    self.filename = name_bytes.decode("utf-8", "replace")
                    return True
        return False
