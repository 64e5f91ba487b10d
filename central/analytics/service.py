"""The analytics service: every event into ``event_logs`` and hourly figures; the
``/analytics/*`` reports and ``/metrics/health``.

This module composes the parts and owns their lifetime; each part is one concern:

* :mod:`~central.analytics.api`: the HTTP routes (answers from :mod:`~central.analytics.reports`);
* :mod:`~central.analytics.events`: the events it consumes (all of them; it publishes
  none) and the figures each moves (:mod:`~central.analytics.usage`,
  :mod:`~central.analytics.revenue`, :mod:`~central.analytics.rates`), read through the
  contract (:mod:`~central.analytics.event_data`);
* :mod:`~central.analytics.health`: ``/metrics/health`` and its probes of the services;
* :mod:`~central.analytics.store`: SQL over its own tables (:mod:`~central.analytics.tables`).

It never reads another service's tables: everything it knows comes from events.
:meth:`AnalyticsService.start` opens the probes' client and subscribes to the topics;
:meth:`~AnalyticsService.stop` closes the client.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter

from central.analytics.api import make_router
from central.analytics.events import DURABLE, TOPICS, AnalyticsEvents
from central.analytics.health import Health
from central.analytics.settings import AnalyticsSettings
from central.context import ServiceContext

log = structlog.get_logger("central.analytics")


class AnalyticsService:
    name = "analytics"

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._settings: AnalyticsSettings = ctx.settings.analytics
        self.events = AnalyticsEvents(ctx)
        self.health = Health(ctx, self._settings)

    def router(self) -> APIRouter:
        return make_router(self._ctx, self._settings, self.health)

    async def start(self) -> None:
        await self.health.start()
        for topic in TOPICS:
            await self._ctx.bus.subscribe(
                topic, DURABLE, self.events.handle, self.events.handle_batch
            )
        log.info("analytics.started")

    async def stop(self) -> None:
        await self.health.stop()
