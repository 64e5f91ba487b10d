"""Ports on this host: a free one for a daemon to bind, whether one is served, and waiting
until something is (``wait_for``; a process's own waits are ``processes.DaemonProcess``'s)."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx

# /proc/net lists the listening sockets; reading it does not connect, so the daemon under
# test neither sees nor logs a probe connection
_TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_LISTEN = "0A"


# Under pytest-xdist each worker takes ports from a range of its own, below the kernel's
# ephemeral ports: a port one test freed is not handed to another worker's daemon (the
# kernel's choice can be, and a restarted daemon then answered for another test's)
_WORKER_PORTS = 2000
_FIRST_WORKER_PORT = 12000
_next_port = itertools.count()


def _worker_number() -> int | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else None


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now, for a daemon to bind next: the kernel's choice, or
    under pytest-xdist the next free one of this worker's range."""
    worker = _worker_number()
    if worker is None:
        with socket.socket() as sock:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])
    first = _FIRST_WORKER_PORT + worker * _WORKER_PORTS
    for _ in range(_WORKER_PORTS):
        port = first + next(_next_port) % _WORKER_PORTS
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}..{first + _WORKER_PORTS - 1}")


def listening(host: str, port: int) -> bool:
    """Does a TCP socket listen on ``port``? From /proc/net where there is one; elsewhere
    by connecting to ``host``."""
    if not any(table.exists() for table in _TCP_TABLES):
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    wanted = f":{port:04X}"
    for table in _TCP_TABLES:
        with contextlib.suppress(OSError):
            for line in table.read_text().splitlines()[1:]:
                fields = line.split()
                if fields[1].endswith(wanted) and fields[3] == _LISTEN:
                    return True
    return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Does ``url`` answer a GET with 200 now?"""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.TransportError:
        return False


def wait_for(
    ready: Callable[[], bool],
    what: str,
    *,
    within: float,
    interval: float = 0.05,
    check: Callable[[], None] | None = None,
) -> None:
    """Poll ``ready`` until it holds; raise TimeoutError naming ``what`` after ``within`` s.

    ``check`` runs between polls and raises when waiting longer is pointless (the process
    that should answer has exited)."""
    deadline = time.monotonic() + within
    while not ready():
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within:g} s: {what}")
        time.sleep(interval)
