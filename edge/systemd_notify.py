"""systemd's notify protocol (``Type=notify``, ``WatchdogSec=``), a few lines on a socket.

systemd passes ``$NOTIFY_SOCKET`` (a datagram socket; ``@name`` is an abstract one) and,
with a watchdog, ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``, the process meant). Without
them every call does nothing, so the daemon runs the same outside systemd.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)


class SystemdNotifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        meant_for_us = env.get("WATCHDOG_PID", str(os.getpid())) == str(os.getpid())
        # systemd's advice: ping at half the interval
        self.watchdog_interval = (
            int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and meant_for_us else None
        )

    def send(self, state: str) -> None:
        """One state line (``READY=1``, ``STOPPING=1``, ``WATCHDOG=1``); a failure is
        logged, never raised: supervision must not stop the site."""
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(state.encode(), self.address)
        except OSError as err:
            log.warning("systemd.notify_failed", state=state, error=str(err))

    async def watchdog(self) -> None:
        """Ping from the event loop: a loop stuck (a blocking call, a busy loop) stops the
        pings, and systemd restarts the daemon after ``WatchdogSec``. (A stalled store is
        for /healthz; a dead writer stops the daemon by itself.)"""
        if self.watchdog_interval is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_interval)
