"""A real HTTP server for firmware images, for tests of firmware updates."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

IMAGE = b"\x7fELF evpark firmware 2.1\n" * 64
VERSION = f"evpark-2.1-{hashlib.sha256(IMAGE).hexdigest()[:8]}"  # what the sim boots with


@dataclass
class FirmwareServer:
    """Serves the files it was given; every GET path it was asked for, in order."""

    base: str
    asked: list[str] = field(default_factory=list)

    def url(self, name: str = "evpark-2.1.bin") -> str:
        return f"{self.base}/{name}"


@contextlib.contextmanager
def serving(files: dict[str, bytes], root: Path) -> Iterator[FirmwareServer]:
    root.mkdir(parents=True)
    for name, content in files.items():
        (root / name).write_bytes(content)
    served = FirmwareServer("")

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            served.asked.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
