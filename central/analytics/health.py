"""``/metrics/health``: is every part of central up, and is every site heard from?

This service's database; the other services (those in this process are up, each of
``service_urls`` is probed at ``/healthz`` with a timeout, a retry and a circuit breaker,
and the probe's outcome kept in ``system_health``); per bus topic the events analytics
consumed and the age of the last one when consumed, and every durable consumer's backlog
(events not yet applied, and the age of the oldest, whichever process runs it:
:mod:`central.infra.bus_backlog`); each site's reachability (the sync service's
record of its last contact, :mod:`central.sync.presence`, else its events). Anything
down, lagging or offline makes the answer ``degraded`` with the problems named; it still
answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

import structlog
from sqlalchemy.exc import SQLAlchemyError

from central.analytics import store
from central.analytics.settings import AnalyticsSettings
from central.context import ServiceContext
from central.infra.bus_backlog import BacklogSource, ConsumerBacklog
from central.infra.http_client import ResilientClient, Unavailable
from central.site_commands import COMMANDS_TOPIC
from central.sync.presence import presence
from contract.envelope import CHARGING_TOPIC, PARKING_TOPIC

log = structlog.get_logger("central.analytics")

SERVICE: Final = "analytics"
BUS_TOPICS: Final = (PARKING_TOPIC, CHARGING_TOPIC, COMMANDS_TOPIC)


class Health:
    def __init__(self, ctx: ServiceContext, settings: AnalyticsSettings) -> None:
        self._ctx = ctx
        self._settings = settings
        self._probe: ResilientClient | None = None

    async def start(self) -> None:
        resilience = self._ctx.settings.resilience.model_copy(
            update={"timeout_s": self._settings.probe_timeout_s, "retries": 1}
        )
        self._probe = ResilientClient(resilience)

    async def stop(self) -> None:
        if self._probe is not None:
            await self._probe.aclose()
            self._probe = None

    async def report(self, in_process: Mapping[str, object]) -> dict[str, Any]:
        """The answer of ``/metrics/health``; ``in_process``: the services of this process."""
        s, now = self._settings, self._ctx.clock()
        degraded: list[str] = []
        services: dict[str, dict[str, Any]] = {}
        rows: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(s.probe_timeout_s):
                async with self._ctx.engine.connect() as conn:
                    await store.ping(conn)
                    rows = await store.health_rows(conn)
            services[SERVICE] = {"status": "up", "mode": "in-process"}
        except (SQLAlchemyError, OSError, TimeoutError) as err:
            services[SERVICE] = {"status": "down", "error": f"database: {type(err).__name__}"}
            degraded.append("analytics database unreachable")
        for name in sorted(in_process):
            if name != SERVICE:
                services[name] = {"status": "up", "mode": "in-process"}
        remote = {
            name: url
            for name, url in self._ctx.settings.service_urls.items()
            if name not in in_process
        }
        results: dict[str, asyncio.Task[dict[str, Any]]] = {}
        async with asyncio.TaskGroup() as group:
            for name, url in remote.items():
                results[name] = group.create_task(self._probe_service(name, url))
        for name, task in results.items():
            services[name] = task.result()
            if services[name]["status"] != "up":
                degraded.append(f"service {name} is {services[name]['status']}")

        bus: dict[str, Any] = {}
        sites: list[dict[str, Any]] = []
        for row in rows:
            if row["kind"] == "bus":
                topic = row["component"].removeprefix("topic:")
                lag = row["lag_s"]
                bus[topic] = {
                    "events": row["events"],
                    "last_event_time": row["last_event_time"],
                    "last_consumed_at": row["last_seen"],
                    "lag_s": lag,
                    "status": "lagging" if lag is not None and lag > s.bus_lag_warn_s else "ok",
                }
            elif row["kind"] == "site":
                site_id = row["component"].removeprefix("site:")
                # Reachable now: the sync service's record of the edge's last contact
                # (its long poll keeps it fresh); events alone go quiet on a calm site.
                # Without such a record (sync not sharing this cache) events decide.
                reach = await presence(self._ctx.cache, site_id)
                last_contact = reach.last_contact or row["last_seen"]
                silent = (now - last_contact).total_seconds() if last_contact else None
                stale = silent is None or silent > s.site_stale_s
                if reach.last_contact is None:
                    status = "stale" if stale else "online"
                elif reach.online:
                    status = "online"
                else:
                    status = "offline"
                    degraded.append(reach.describe())
                sites.append(
                    {
                        "site_id": site_id,
                        "last_contact": last_contact,
                        "last_event_time": row["last_event_time"],
                        "silent_s": None if silent is None else round(silent, 1),
                        "events": row["events"],
                        "status": status,
                    }
                )
            elif (
                row["kind"] == "service"
                and row["component"].removeprefix("service:") not in services
            ):
                services[row["component"].removeprefix("service:")] = {
                    "status": "unknown",
                    "last_probe": row["last_seen"],
                }
        for topic, info in bus.items():
            if info["status"] == "lagging":
                degraded.append(f"bus topic {topic} lags {info['lag_s']:.0f} s")
        await self._add_backlogs(bus, degraded)
        return {
            "status": "degraded" if degraded else "ok",
            "checked_at": now,
            "problems": degraded,
            "services": services,
            "bus": bus,
            "sites": sites,
        }

    async def _add_backlogs(self, bus: dict[str, Any], degraded: list[str]) -> None:
        """Each topic's consumers, with what they have not applied yet."""
        source = self._ctx.bus
        if not isinstance(source, BacklogSource):
            return
        s = self._settings
        try:
            async with asyncio.timeout(s.probe_timeout_s):
                backlogs = await source.backlog(BUS_TOPICS)
        except Exception as err:  # noqa: BLE001 - any failure of the bus is reported, not raised
            log.warning("analytics.backlog.unknown", error=repr(err))
            degraded.append(f"bus consumers' backlog unknown: {type(err).__name__}")
            return
        for backlog in backlogs:
            topic = bus.setdefault(backlog.topic, {"status": "ok"})
            age = None if backlog.oldest_age_s is None else round(backlog.oldest_age_s, 1)
            status = backlog_status(backlog, s)
            topic.setdefault("consumers", {})[backlog.consumer] = {
                "pending": backlog.pending,
                "oldest_age_s": age,
                "status": status,
            }
            if status != "ok":
                topic["status"] = "lagging"
                oldest = "" if age is None else f", the oldest {age:.0f} s old"
                degraded.append(
                    f"bus consumer {backlog.consumer} of {backlog.topic} has "
                    f"{backlog.pending} events not applied{oldest}"
                )

    async def _probe_service(self, name: str, base_url: str) -> dict[str, Any]:
        assert self._probe is not None, "start() first"
        now = self._ctx.clock()
        try:
            response = await self._probe.request(name, "GET", base_url.rstrip("/") + "/healthz")
        except Unavailable as err:
            result: dict[str, Any] = {"status": "down", "error": err.reason}
        else:
            result = (
                {"status": "up", "mode": "remote"}
                if response.status_code == 200
                else {"status": "down", "error": f"HTTP {response.status_code}"}
            )
        try:
            async with self._ctx.engine.begin() as conn:
                await store.record_probe(conn, name, result["status"], now, result)
        except SQLAlchemyError as err:
            log.warning("analytics.probe.not_recorded", service=name, error=repr(err))
        return result


def backlog_status(backlog: ConsumerBacklog, settings: AnalyticsSettings) -> str:
    """``lagging`` when a consumer holds too many events, or one for too long."""
    too_old = backlog.oldest_age_s is not None and backlog.oldest_age_s > settings.bus_lag_warn_s
    return "lagging" if too_old or backlog.pending > settings.bus_backlog_warn else "ok"
