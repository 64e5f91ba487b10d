"""The parking service: slots, reservations, status per site and slot type, history.

This module composes the parts and owns their lifetime; each part is one concern:

* :mod:`~central.parking.api`: the HTTP routes (bodies in :mod:`~central.parking.schema`);
* :mod:`~central.parking.bookings`: reservations central books, releases and expires,
  and the commands that tell the sites;
* :mod:`~central.parking.events`: the sites' events it consumes (it publishes none);
* :mod:`~central.parking.store`: SQL over its own tables (:mod:`~central.parking.tables`);
* :mod:`~central.parking.reservations`: the reservation rules, without I/O.

:meth:`ParkingService.start` subscribes to the event topics and starts the expiry loop,
which expires unused reservations every ``expiry_interval_s``; :meth:`~ParkingService.stop`
cancels it.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from central.context import ServiceContext
from central.infra.lifetimes import Background
from central.parking.api import make_router
from central.parking.bookings import Bookings
from central.parking.events import DURABLE, TOPICS, ParkingEvents


class ParkingService:
    name = "parking"

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self.bookings = Bookings(ctx)
        self.events = ParkingEvents(ctx)
        self._background = Background(self.name)

    def router(self) -> APIRouter:
        return make_router(self._ctx, self.bookings)

    async def start(self) -> None:
        await self._background.start()
        for topic in TOPICS:
            await self._ctx.bus.subscribe(
                topic, DURABLE, self.events.handle, self.events.handle_batch, self.events.types
            )
        self._background.supervise("parking.expiry", self._expiry_loop)

    async def stop(self) -> None:
        await self._background.stop()

    async def _expiry_loop(self) -> None:
        while True:
            await self.bookings.expire_due()
            await asyncio.sleep(self._ctx.settings.expiry_interval_s)
