"""Which event loop the daemon runs on: uvloop where it is installed, else asyncio's own.

uvloop does the socket reads and writes, the selector and the callback queue in C. For
the edge that is a fifth or more of the work per OCPP message, so it is the default
(``[runtime] event_loop = "auto"``); ``"asyncio"`` turns it off, ``"uvloop"`` insists on it.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Literal

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class EventLoopUnavailable(Exception):
    """``uvloop`` was asked for and is not installed."""


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(choice: EventLoopChoice) -> LoopFactory:
    if choice == "asyncio" or (choice == "auto" and not uvloop_installed()):
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError as err:
        raise EventLoopUnavailable(
            "event_loop = 'uvloop' but uvloop is not installed (pip install uvloop)"
        ) from err
    return uvloop.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``, for logs and the bench's report."""
    return type(loop).__module__.partition(".")[0]
