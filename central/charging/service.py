"""The charging service: remote start and stop through the site, sessions with their
energy and cost, rates, chargers' status, the drivers' id tokens.

This module composes the parts and owns their lifetime; each part is one concern:

* :mod:`~central.charging.api`: the HTTP routes (bodies in :mod:`~central.charging.schema`);
* :mod:`~central.charging.commands`: the commands sent to the sites and waiting for
  their answers;
* :mod:`~central.charging.events`: the sites' events it consumes (it publishes none),
  and whose a session is;
* :mod:`~central.charging.sessions`: sessions priced for the API;
* :mod:`~central.charging.rates`: the sites' rates, cached and sent to the sites;
* :mod:`~central.charging.id_tags`: the drivers' RFID cards, sent to every site
  (:mod:`~central.charging.tokens`: the entries, and a remote start's app token);
* :mod:`~central.charging.power`: the sites' load management: their power events kept,
  and the ``set_site_limit`` command;
* :mod:`~central.charging.store`: SQL over its own tables (:mod:`~central.charging.tables`).

Pricing is the engine analytics uses too, :mod:`central.pricing`.
:meth:`ChargingService.start` subscribes to ``charging.events``;
:meth:`~ChargingService.stop` releases whoever waits for a command's answer.
"""

from __future__ import annotations

from fastapi import APIRouter

from central.charging.api import make_router
from central.charging.commands import Commands
from central.charging.events import DURABLE, TOPIC, ChargingEvents
from central.charging.id_tags import IdTags
from central.charging.power import SitesPower
from central.charging.rates import Rates
from central.charging.sessions import Sessions
from central.context import ServiceContext


class ChargingService:
    name = "charging"

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self.commands = Commands(ctx)
        self.sessions = Sessions(ctx)
        self.rates = Rates(ctx, self.commands)
        self.id_tags = IdTags(ctx, self.commands)
        self.power = SitesPower(ctx, self.commands)
        self.events = ChargingEvents(
            ctx,
            answered=self.commands.wake,
            site_seen=self.id_tags.site_seen,
            more=self.power.handlers(),
        )

    def router(self) -> APIRouter:
        return make_router(
            self._ctx, self.commands, self.sessions, self.rates, self.id_tags, self.power
        )

    async def start(self) -> None:
        await self._ctx.bus.subscribe(
            TOPIC, DURABLE, self.events.handle, self.events.handle_batch, self.events.types
        )

    async def stop(self) -> None:
        self.commands.wake_all()
