"""The edge daemon's composition root: store, site, OCPP server, HTTP API, loops.

:class:`EdgeDaemon` is an async context manager that owns every part and task of one
site's daemon; ``run_daemon`` runs it until SIGTERM or SIGINT, then stops gracefully:
chargers are disconnected, the HTTP server stops, and every accepted write is committed
before the store closes. The stop is bounded: writes the SQLite writer has not committed
within ``storage.stop_timeout`` fail (their chargers get a CALLERROR, or nothing if they
left) instead of holding the process. If the writer thread dies, the daemon stops with an
error (a non-zero exit, so systemd restarts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from importlib.metadata import version as package_version
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from edge.api.configuration import configuration_router
from edge.api.firmware import firmware_router
from edge.api.logs import logs_router
from edge.api.power import power_router
from edge.api.profiles import profiles_router
from edge.api.routes import create_app
from edge.api.server import HttpServer
from edge.api.slots import slots_router
from edge.api.uploads import uploads_router
from edge.config import SiteConfig
from edge.core.charger_states import site_charger_ids
from edge.core.ids import ChargerId
from edge.event_loop import loop_factory, loop_name
from edge.fd_limit import raise_open_files_limit
from edge.metrics import OcppMetrics
from edge.ocpp.server import OcppServer
from edge.power.manager import LoadManager
from edge.power.metrics import PowerMetrics
from edge.sensors.broker import EmbeddedBroker, site_broker
from edge.sensors.charger_states import ChargerStates
from edge.sensors.homeassistant import HomeAssistantDiscovery
from edge.sensors.metrics import MqttMetrics
from edge.sensors.mqtt import MqttSensors
from edge.services.changes import SiteChange
from edge.services.logs import public_base
from edge.services.site import Clock, Site, utc_now
from edge.services.slots import SlotService
from edge.startup import StartupError, preflight
from edge.storage.sqlite import SqliteStore
from edge.systemd_notify import SystemdNotifier
from edge.ui.app import WebUi
from edge.ui.power_page import PowerLive
from edge.uplink.commands import CloudCommandRunner
from edge.uplink.sync import CentralSync

log = structlog.get_logger(__name__)


def database_path(config: SiteConfig) -> Path:
    return config.storage.database


class EdgeDaemon:
    def __init__(self, config: SiteConfig, clock: Clock = utc_now) -> None:
        self.config = config
        self.clock = clock
        self.registry = CollectorRegistry()
        self.metrics = OcppMetrics(self.registry)
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self.store: SqliteStore
        self.site: Site
        self.ocpp: OcppServer
        self.http: HttpServer
        self.slots: SlotService
        self.mqtt: MqttSensors
        self.broker: EmbeddedBroker | None = None
        self.ui: WebUi

    @property
    def ocpp_port(self) -> int:
        return self.ocpp.port

    @property
    def http_port(self) -> int:
        return self.http.port

    async def __aenter__(self) -> EdgeDaemon:
        structlog.contextvars.bind_contextvars(site=self.config.site.id)
        try:
            await self._start()
        except BaseException as err:
            # A failed or abandoned start: what started stops, and the start's own error
            # (not the tasks' group of it) is what the operator reads.
            for task in self._tasks:
                task.cancel()
            try:
                await self._stack.aclose()
            except BaseException as cleanup:  # noqa: BLE001 - the first error is the one to raise
                log.debug("edge.start.cleanup_failed", error=repr(cleanup))
            # a server's failure cancels the start (its task group's way): say which
            bind = _bind_failure(self._tasks)
            if bind is not None:
                raise bind from None
            raise err from None
        return self

    async def _start(self) -> None:
        raise_open_files_limit()  # every connection, OCPP or HTTP, holds a file descriptor
        storage = self.config.storage
        self.store = await self._stack.enter_async_context(
            SqliteStore(
                database_path(self.config),
                registry=self.registry,
                stall_after=storage.writer_stall_after,
                stop_timeout=storage.stop_timeout,
            )
        )
        self.site = Site(self.config, self.store, self.clock)
        await self.site.load()
        self.slots = SlotService(self.config, self.site, self.store, self.clock)
        await self.slots.load()
        self.ocpp = OcppServer(self.config, self.site, self.metrics)
        self.power = LoadManager(self.config, self.site, self.ocpp, self.clock)
        # --- technician web UI: pages, logins, live updates (edge.ui) ---
        self.ui = WebUi(self.config, self.site, self.slots, self.ocpp, self.clock, power=self.power)
        self.site.observe(self.ui.hub.on_site_change)
        self.power.observers.append(PowerLive(self.ui.hub))
        if self.power.enabled:  # without load management its gauges could only say 0
            self.power.observers.append(PowerMetrics(self.registry).observe)
        self.slots.publishers.append(self.ui.hub)
        self.sync: CentralSync | None = None
        http = self.config.http
        if self.config.central.url:
            runner = CloudCommandRunner(self.site, self.slots, self.ocpp, self.clock, self.power)
            self.sync = CentralSync(self.config, self.store, runner, self.registry, self.clock)
        app = create_app(
            self.site,
            self.ocpp,
            self.registry,
            extra=[
                slots_router(self.slots),
                power_router(self.power),
                profiles_router(self.site, self.ocpp),
                firmware_router(self.site, self.ocpp),
                configuration_router(self.site, self.ocpp),
                self.ui.router,
                logs_router(self.site, self.ocpp),
                uploads_router(self.site.logs, self.registry),
            ],
            health={"sync": self.sync.health} if self.sync else None,
        )
        self.ui.install(app)
        self.site.logs.base = lambda: public_base(http, self.http_port)
        max_upload = self.config.diagnostics.max_upload_mb * 2**20
        self.http = HttpServer(app, http, self.registry, max_upload)
        mqtt = self.config.mqtt
        self.broker = await self._stack.enter_async_context(site_broker(mqtt))
        self.mqtt = MqttSensors(
            site_id=self.config.site.id,
            mqtt=mqtt,
            sink=self.slots,
            metrics=MqttMetrics(self.registry),
            known_sensors={s.sensor for s in self.config.slots if s.sensor},
            grid=self.power.grid_power if self.config.power.grid_meter != "none" else None,
        )
        self._publish_chargers(self.mqtt)
        await self._stack.enter_async_context(self.mqtt)
        self.slots.publishers.append(self.mqtt)
        group = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._stack.callback(self.ui.hub.close)  # ends live streams before the HTTP server waits
        self._tasks = [
            group.create_task(self.store.watch(), name="store-writer"),
            group.create_task(self.ocpp.run(), name="ocpp"),
            group.create_task(self.http.run(), name="http"),
            group.create_task(self.site.run_inferred_stops(), name="inferred-stops"),
            group.create_task(self.slots.run(), name="slots"),
        ]
        if self.power.enabled:  # without a site limit there is nothing to manage
            self._tasks.append(group.create_task(self.power.run(), name="power"))
        if self.sync is not None:
            self._tasks.append(group.create_task(self.sync.run(), name="sync"))
        await _until_ready(
            asyncio.gather(self.ocpp.ready.wait(), self.http.ready.wait()), watch=self._tasks
        )
        log.info(
            "edge.ready",
            ocpp=f"ws://{self.config.ocpp.host}:{self.ocpp_port}/ocpp/<charge point id>",
            http=f"http://{self.config.http.host}:{self.http_port}/",
            database=str(database_path(self.config)),
            event_loop=loop_name(asyncio.get_running_loop()),
        )

    def _publish_chargers(self, mqtt: MqttSensors) -> None:
        """The chargers' states on MQTT and, if asked for, Home Assistant's discovery."""
        site, config = self.site, self.config
        states = ChargerStates(
            site_id=config.site.id,
            publish=mqtt.publish_retained,
            charger=site.chargers.get,
            session_on=site.active_session_on,
            every=config.mqtt.charger_state_interval,
        )
        self._stack.callback(states.close)
        slot_evses = [
            (ChargerId(s.charger), s.evse, s.connector)
            for s in config.slots
            if s.charger is not None and s.evse is not None
        ]
        configured = [c.id for c in config.chargers] + [c for c, _, _ in slot_evses]
        states.publish_all(site_charger_ids(configured, site.chargers), slot_evses)
        discovery: HomeAssistantDiscovery | None = None
        if config.mqtt.homeassistant_discovery:
            discovery = HomeAssistantDiscovery(
                config=config, publish=mqtt.publish_retained, charger=site.chargers.get,
                sw_version=package_version("evpark"),
            )  # fmt: skip
            mqtt.watch(discovery.topic_filter, discovery.receive)
            discovery.publish_all(site.chargers)

        def on_change(change: SiteChange) -> None:
            if change.kind == "charger":
                states.charger_changed(change.charger_id)
            elif change.evse_id is not None:
                states.evse_changed(
                    change.charger_id, change.evse_id, metered=change.kind == "meter"
                )
            if discovery is not None and change.kind in ("charger", "evse"):
                discovery.charger_changed(change.charger_id)

        site.observe(on_change)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        log.info("edge.stopping")
        self.http.stop()
        for task in self._tasks:
            if task.get_name() != "http":
                task.cancel()
        # Chargers' answers and API requests wait for their writes; a stuck writer must
        # not hold the stop: past the timeout those writes fail and everything closes.
        timeout = self.config.storage.stop_timeout
        give_up = asyncio.get_running_loop().call_later(timeout, self._abandon_writes, timeout)
        try:
            await self._stack.aclose()
        finally:
            give_up.cancel()
        log.info("edge.stopped")

    def _abandon_writes(self, waited: float) -> None:
        failed = self.store.abandon("the daemon stopped before this write was committed")
        log.error("edge.stop.writes_abandoned", uncommitted=failed, waited_s=waited)

    async def wait(self) -> None:
        """Until one of the daemon's tasks ends (which only happens on failure)."""
        await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"{task.get_name()} failed") from task.exception()


async def _until_ready(ready: asyncio.Future[Any], watch: list[asyncio.Task[None]]) -> None:
    """Wait for the readiness signals, failing fast if a watched task dies first."""
    try:
        await asyncio.wait([ready, *watch], return_when=asyncio.FIRST_COMPLETED)
        for task in watch:
            if task.done():
                raise RuntimeError(f"{task.get_name()} stopped while starting") from (
                    task.exception() if not task.cancelled() else None
                )
        await ready
    finally:
        ready.cancel()
        ready.add_done_callback(_retrieved)  # an abandoned start is not an unhandled error


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


# how long a start may go on after SIGTERM before it is abandoned, seconds
_START_GRACE = 3.0

_BIND_KEYS = {"ocpp": "ocpp.port", "http": "http.port"}


def _bind_failure(tasks: list[asyncio.Task[None]]) -> StartupError | None:
    """A server that could not bind (its port taken after the preflight looked), as the
    operator's one line; its error may sit deep in task groups."""
    for task in tasks:
        key = _BIND_KEYS.get(task.get_name())
        if key is None or not task.done() or task.cancelled():
            continue
        err: BaseException | None = task.exception()
        while isinstance(err, BaseExceptionGroup) and len(err.exceptions) == 1:
            err = err.exceptions[0]
        if isinstance(err, OSError):
            return StartupError(f"{key}: cannot listen: {err}")
    return None


async def serve_until_stopped(config: SiteConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    starting = True
    systemd = SystemdNotifier()

    def abandon_start() -> None:
        if starting and main is not None:
            main.cancel()  # what the start opened closes; nothing was accepted yet

    def on_signal() -> None:
        if starting and not stop.is_set():
            # A start usually ends in a moment, then stops at once; one that hangs (a
            # server that never gets ready) is cancelled. Cancelling every start would
            # break libraries in the middle of their handshakes (MQTT's subscribe).
            loop.call_later(_START_GRACE, abandon_start)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        async with EdgeDaemon(config) as daemon:
            starting = False
            # What start-up made (modules, the loaded site) lives as long as the process.
            # Frozen, it is left out of the collector's full passes, which then take a few ms
            # instead of stalling every charger's answer for tens of ms every second or so.
            gc.freeze()
            # Under load a few thousand objects are always in flight (messages waiting for
            # their commit); at the default threshold of 700 every young collection walks
            # them, about once per hundred messages. Almost nothing per message outlives
            # it, so a higher threshold costs little memory.
            gc.set_threshold(10_000, 10, 10)
            systemd.send("READY=1")
            waiter = asyncio.create_task(daemon.wait())
            stopper = asyncio.create_task(stop.wait())
            watchdog = asyncio.create_task(systemd.watchdog())
            try:
                await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    waiter.result()
            finally:
                systemd.send("STOPPING=1")
                watchdog.cancel()
                waiter.cancel()
                stopper.cancel()
    except asyncio.CancelledError:
        if not starting or not stop.is_set():
            raise
        log.info("edge.start.abandoned", reason="a signal came while starting")


def run_daemon(config: SiteConfig) -> None:
    # The SQLite writer thread and the event loop hand the GIL to each other once per
    # batch; Python's default 5 ms switch interval would add that much to every answer.
    sys.setswitchinterval(0.0005)
    preflight(config)  # a taken port or a missing file: one line, before anything starts
    with asyncio.Runner(loop_factory=loop_factory(config.runtime.event_loop)) as runner:
        runner.run(serve_until_stopped(config))
