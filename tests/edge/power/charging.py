"""Cars charging on simulated chargers, for the load management tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from sim.charger import SimCharger


async def start_charging(chargers: Iterable[SimCharger], within: float = 10) -> None:
    """Each charger online, then a car plugged in and charging on its connector 1."""
    chargers = list(chargers)
    async with asyncio.timeout(within):
        for cp in chargers:
            await cp.wait_online()
    for cp in chargers:
        await cp.plug_in(1)
        await cp.start(1, "TAG-OK")
