"""Waiting for something to become true in a test, without asserting how long it took."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 10) -> None:
    """Poll ``check`` until it holds; fail with ``what`` if it does not within ``within`` s."""
    try:
        async with asyncio.timeout(within):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {within} s: {what}") from None
