"""``SimCharger``: one simulated charge point speaking OCPP 1.6J or 2.0.1.

The core is version-neutral: the charger's lifetime, its connectors and the
step-by-step API that tests, the driver loop and the vehicle scenario use (plug in,
authorize, start, meter, stop, fault...). The link to the central system (connect, boot,
heartbeat, reconnect, deliver the transaction queue) is :mod:`sim.charger.link`; what
each message holds is the protocol version's (:mod:`sim.charger.v16`,
:mod:`sim.charger.v201`).

Use it as an async context manager::

    async with SimCharger(SimChargerConfig("CP-1", url="ws://127.0.0.1:9000/ocpp")) as cp:
        await cp.wait_online()
        await cp.plug_in(1)
        await cp.authorize("DEMO-TAG-1")
        await cp.start(1, "DEMO-TAG-1")
        await cp.send_meter_values(1, n=3)
        await cp.stop(1)

or run ``await cp.run()`` in a TaskGroup you own and end it with ``cp.request_stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self

import structlog

from sim.charger.curve import ConnectorMeter, make_curve
from sim.charger.link import CentralSystemLink
from sim.charger.model import (
    AuthLists,
    Clock,
    Connector,
    SimChargerConfig,
    StopReason,
    SystemClock,
    Transaction,
    energy_flows,
    open_to_a_start,
)
from sim.charger.offline_queue import OfflineQueue, QueuedMessage
from sim.charger.profiles import ProfileStore, Running
from sim.charger.protocol import ChargerProtocol
from sim.charger.rpc import (
    CallTimeout,
    ChargerError,
    ConnectionLost,
    Exchange,
    FollowUp,
    NotConnected,
)


class ChargerStateError(ChargerError):
    """The operation does not fit the connector's state (no transaction, faulted...)."""


class SimCharger:
    def __init__(
        self,
        config: SimChargerConfig,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.id = config.charge_point_id
        self.version = config.version
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random(config.seed)
        self.log = structlog.get_logger("sim.charger").bind(charger=self.id, ocpp=config.version)
        curve = make_curve(config.curve, config.max_power_w)
        self.connectors: dict[int, Connector] = {
            evse: Connector(
                evse=evse,
                meter=ConnectorMeter(curve=curve, register_wh=config.start_register_wh),
            )
            for evse in range(1, config.connectors + 1)
        }
        self.profiles = ProfileStore(phases=curve.phases, voltage=curve.voltage_v)
        self.auth = AuthLists()
        self.queue = OfflineQueue(config.offline_queue_size)
        self.link = CentralSystemLink(self)
        self.protocol: ChargerProtocol = _make_protocol(self)

        self._stop_requested = asyncio.Event()
        self._follow_ups: asyncio.Queue[FollowUp] = asyncio.Queue()
        self._behaviour: list[asyncio.Task[None]] = []
        self._exit_stack: AsyncExitStack | None = None

    # -- lifetime -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        group = await stack.enter_async_context(asyncio.TaskGroup())
        group.create_task(self.run(), name=f"sim-charger-{self.id}")
        self._exit_stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.request_stop()
        stack, self._exit_stack = self._exit_stack, None
        if stack is None:
            return
        if isinstance(exc, Exception):
            # The body failed: stop, and let its exception propagate unwrapped.
            await stack.aclose()
        else:
            await stack.__aexit__(exc_type, exc, tb)

    def request_stop(self) -> None:
        """Ask ``run`` to stop gracefully: end running sessions, flush, disconnect."""
        self._stop_requested.set()

    async def run(self, stop_timeout: float = 10.0) -> None:
        """Run until :meth:`request_stop`; on stop, running sessions are stopped and the
        transaction queue is flushed (bounded by ``stop_timeout`` seconds)."""
        from sim.charger.driver import drive_connector

        self.log.info("sim.charger.starting", endpoint=self.config.endpoint)
        async with asyncio.TaskGroup() as group:
            services = [
                group.create_task(self.link.run()),
                group.create_task(self._follow_up_worker()),
                group.create_task(self._housekeeping()),
            ]
            for evse in self.connectors:
                if self.config.auto_meter_values:
                    self._behaviour.append(group.create_task(self._meter_loop(evse)))
                if self.config.drive:
                    self._behaviour.append(
                        group.create_task(drive_connector(self, evse, self.clock))
                    )
            try:
                await self._stop_requested.wait()
                await self._graceful_stop(stop_timeout)
            finally:
                self.link.closing = True
                for task in services:
                    task.cancel()
        self.log.info("sim.charger.stopped")

    async def _graceful_stop(self, within: float) -> None:
        self.link.closing = True
        for task in self._behaviour:
            task.cancel()
        if self._behaviour:
            await asyncio.wait(self._behaviour)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                for evse, connector in self.connectors.items():
                    if connector.transaction is not None:
                        await self.stop(evse, "Local")
                if self.online:
                    await self.queue.drained()
        await self.link.close()

    # -- state and the link, for tests and the demo ----------------------------------

    @property
    def online(self) -> bool:
        """Connected and booted (BootNotification accepted)."""
        return self.link.online

    @property
    def received(self) -> list[Exchange]:
        """The central system's calls, in order."""
        return self.link.received

    @property
    def sent(self) -> list[Exchange]:
        """The messages sent, in order."""
        return self.link.sent

    @property
    def responses(self) -> dict[str, dict[str, Any]]:
        """The last answer to each action sent."""
        return self.link.responses

    @property
    def boot_count(self) -> int:
        return self.link.boot_count

    @property
    def connection_count(self) -> int:
        return self.link.connection_count

    async def wait_online(self) -> None:
        """Wait until connected, booted and the connectors' statuses sent (bound it with
        ``asyncio.timeout``)."""
        await self.link.wait_online()

    async def wait_offline(self) -> None:
        await self.link.wait_offline()

    async def wait_for_command(self, action: str) -> Exchange:
        """The first call of ``action`` received from the central system (waiting for it)."""
        return await self.link.wait_for_command(action)

    async def disconnect(self, *, abrupt: bool = True) -> None:
        """Drop the connection (a network loss when ``abrupt``) and stay offline until
        :meth:`reconnect`."""
        await self.link.disconnect(abrupt=abrupt)

    async def reconnect(self) -> None:
        """Allow connecting again, at once (no backoff wait)."""
        self.link.reconnect()

    async def flush(self) -> None:
        """Wait until every queued transaction message has been delivered."""
        await self.queue.drained()

    def connector(self, evse: int) -> Connector:
        try:
            return self.connectors[evse]
        except KeyError:
            raise ChargerStateError(f"{self.id} has no connector {evse}") from None

    def transaction(self, evse: int = 1) -> Transaction | None:
        return self.connector(evse).transaction

    def schedule(self, follow_up: FollowUp) -> None:
        """Run ``follow_up`` after the current answer, in order, on the worker task."""
        self._follow_ups.put_nowait(follow_up)

    async def reboot(self, reason: StopReason, boot_reason: str) -> None:
        """A reset: stop sessions with ``reason``, close, connect and boot again."""
        for evse, connector in self.connectors.items():
            if connector.transaction is not None:
                await self.stop(evse, reason)
        self.log.info("sim.charger.rebooting", reason=reason)
        await self.link.restart(boot_reason)

    # -- background behaviour -----------------------------------------------------

    async def _follow_up_worker(self) -> None:
        while True:
            follow_up = await self._follow_ups.get()
            try:
                await follow_up()
            except ChargerError as err:
                self.log.info("sim.charger.follow_up_failed", error=str(err))

    async def _housekeeping(self) -> None:
        while True:
            await self.clock.sleep(0.5)
            now = self.clock.now()
            for connector in self.connectors.values():
                reservation = connector.reservation
                if reservation is not None and reservation.expires_at <= now:
                    connector.reservation = None
                    self.log.info("sim.charger.reservation_expired", id=reservation.reservation_id)
                    await self.publish_change(connector)

    async def _meter_loop(self, evse: int) -> None:
        connector = self.connectors[evse]
        while True:
            await self.clock.sleep(self.protocol.settings.meter_interval())
            if connector.transaction is not None:
                await self.send_meter_values(evse)

    # -- connector operations (the step-by-step API) ----------------------------------

    async def publish_change(self, connector: Connector) -> None:
        connector.notify()
        await self.publish_status(connector)

    async def publish_status(self, connector: Connector) -> None:
        """Send the connector's status if it changed since last sent (and we are online)."""
        wire = self.protocol.wire_status(connector)
        previous = connector.last_sent_status
        if wire == previous or not self.online:
            return
        connector.last_sent_status = wire
        for action, payload in self.protocol.status_requests(connector, previous, self.clock.now()):
            await self.link.send_or_log(action, payload)

    async def enqueue(self, messages: list[QueuedMessage]) -> None:
        """Queue transaction messages; when online, wait (bounded) for their delivery."""
        online = self.online
        for message in messages:
            self.queue.append(message)
        if online and messages:
            await asyncio.wait([messages[-1].delivered], timeout=self.config.call_timeout)

    async def plug_in(
        self, evse: int = 1, *, soc: float | None = None, capacity_wh: float | None = None
    ) -> None:
        """A vehicle is plugged in (1.6 `Preparing`, 2.0.1 `Occupied`)."""
        connector = self.connector(evse)
        if connector.plugged:
            return
        connector.plugged, connector.finished = True, False
        connector.meter.plug(
            soc if soc is not None else round(self.rng.uniform(10.0, 60.0), 1),
            capacity_wh or self.rng.choice((40_000.0, 58_000.0, 77_000.0, 100_000.0)),
        )
        self.log.info("sim.charger.plugged_in", evse=evse, soc=connector.meter.soc)
        await self.publish_change(connector)
        if self.protocol.settings.tx_starts_at_plug_in() and connector.can_start:
            await self._begin(connector, None, None, "CablePluggedIn")

    async def unplug(self, evse: int = 1) -> None:
        """The vehicle leaves; a running session ends as `EVDisconnected`."""
        connector = self.connector(evse)
        if connector.transaction is not None:
            await self.stop(evse, "EVDisconnected")
        connector.plugged = connector.finished = False
        self.log.info("sim.charger.unplugged", evse=evse)
        await self.publish_change(connector)

    async def authorize(self, id_tag: str) -> str:
        """Authorize at the central system, or locally when offline; the status."""
        if self.online:
            try:
                response = await self.link.call(
                    "Authorize", self.protocol.authorize_request(id_tag)
                )
            except (CallTimeout, ConnectionLost, NotConnected) as err:
                self.log.info("sim.charger.authorize_offline", error=str(err))
            else:
                status = self.protocol.authorize_status(response)
                self.auth.cache[id_tag] = status
                self.log.info("sim.charger.authorized", id_tag=id_tag, status=status)
                return status
        settings = self.protocol.settings
        known = self.auth.lookup(id_tag)
        if known is not None and settings.local_authorize_offline():
            return known
        if known is None and settings.offline_tx_for_unknown_id():
            return "Accepted"
        return known or "Invalid"

    def free_connector(self, id_tag: str | None = None) -> int | None:
        for evse, connector in self.connectors.items():
            reserved_for_other = (
                connector.reservation is not None and connector.reservation.id_tag != id_tag
            )
            if (
                open_to_a_start(connector.transaction)
                and connector.operative
                and connector.fault is None
                and not reserved_for_other
                and not connector.finished
            ):
                return evse
        return None

    async def start(
        self,
        evse: int = 1,
        id_tag: str | None = None,
        *,
        remote_start_id: int | None = None,
        trigger: str = "Authorized",
    ) -> Transaction:
        """Start a transaction (plugging in first if needed), or give ``id_tag`` to one begun
        at plug-in; when online, returns once the central system answered."""
        connector = self.connector(evse)
        if not open_to_a_start(connector.transaction) or not connector.can_start:
            raise ChargerStateError(f"connector {evse} cannot start ({connector.status})")
        tag = id_tag or self.config.id_tags[0]
        if not connector.plugged:
            await self.plug_in(evse)
        tx = connector.transaction
        if tx is None:
            return await self._begin(connector, tag, remote_start_id, trigger)
        tx.id_tag, tx.remote_start_id = tag, remote_start_id
        connector.take_reservation(tx)
        connector.meter.power_w = connector.meter.offered_w()
        self.log.info("sim.charger.tx_authorized", evse=evse, tx=tx.key, id_tag=tag)
        now = self.clock.now()
        await self.enqueue(self.protocol.authorized(tx, connector, trigger, now, not self.online))
        await self.publish_change(connector)
        return tx

    async def _begin(
        self, connector: Connector, tag: str | None, remote_start_id: int | None, trigger: str
    ) -> Transaction:
        """A new transaction on ``connector``; ``tag`` None: begun at plug-in."""
        now = self.clock.now()
        key = self.protocol.new_transaction_key()
        tx = Transaction(
            key, connector.evse, tag, now, connector.meter.register_wh, remote_start_id
        )
        connector.take_reservation(tx)
        connector.transaction, connector.finished = tx, False
        self.apply_limits()
        if energy_flows(tx, self.protocol.settings):
            connector.meter.power_w = connector.meter.offered_w()
        tx.last_sample = connector.meter.sample()
        self.log.info("sim.charger.tx_started", evse=connector.evse, tx=tx.key, id_tag=tag)
        await self.enqueue(self.protocol.started(tx, connector, trigger, now, not self.online))
        await self.publish_change(connector)
        return tx

    def apply_limits(self) -> None:
        """Every connector draws at most what its charging profiles allow now."""
        now = self.clock.now()
        for evse, connector in self.connectors.items():
            tx = connector.transaction
            running = None
            if tx is not None:
                profile_tx = self.protocol.profile_transaction_id(tx)
                running = Running(profile_tx or "", tx.started_at)
            connector.meter.limit_w = self.profiles.limit_w(evse, now, running)

    async def send_meter_values(self, evse: int = 1, n: int = 1) -> None:
        """Charge for ``n`` meter intervals (times ``speed``) and send a sample after each."""
        connector = self.connector(evse)
        for _ in range(n):
            tx = connector.transaction
            if tx is None:
                raise ChargerStateError(f"connector {evse} has no transaction")
            seconds = self.protocol.settings.meter_interval() * self.config.speed
            if not energy_flows(tx, self.protocol.settings):
                seconds = 0.0
            self.apply_limits()
            sample = connector.meter.advance(seconds)
            tx.last_sample = sample
            now = self.clock.now()
            await self.enqueue(self.protocol.metered(tx, connector, sample, now, not self.online))
            await self.publish_change(connector)

    async def stop(self, evse: int = 1, reason: StopReason = "Local") -> Transaction | None:
        """End the connector's transaction (None if there is none)."""
        connector = self.connector(evse)
        tx = connector.transaction
        if tx is None:
            return None
        sample = connector.meter.sample()
        tx.stop_reason = reason
        connector.transaction = None
        if (profile_tx := self.protocol.profile_transaction_id(tx)) is not None:
            self.profiles.transaction_ended(profile_tx)
        self.apply_limits()
        connector.finished = connector.plugged
        connector.meter.idle()
        if connector.pending_operative is not None:
            connector.operative, connector.pending_operative = connector.pending_operative, None
        now = self.clock.now()
        self.log.info(
            "sim.charger.tx_stopped",
            evse=evse,
            tx=tx.key,
            reason=reason,
            energy_wh=round(sample.energy_wh - tx.meter_start_wh),
        )
        await self.enqueue(self.protocol.ended(tx, connector, sample, reason, now, not self.online))
        await self.publish_change(connector)
        return tx

    async def remote_start(self, evse: int, id_tag: str, remote_start_id: int | None) -> None:
        """What a charger does after accepting a remote start: the driver is there."""
        if self.protocol.settings.authorize_remote_start():
            status = await self.authorize(id_tag)
            if status != "Accepted":
                return
        await self.start(evse, id_tag, remote_start_id=remote_start_id, trigger="RemoteStart")

    async def set_operative(self, evse: int | None, operative: bool) -> bool:
        """Change availability of one connector (all when None); False when scheduled
        until a running transaction ends."""
        targets = [self.connector(evse)] if evse else list(self.connectors.values())
        scheduled = False
        for connector in targets:
            if connector.transaction is not None and not operative:
                connector.pending_operative = operative
                scheduled = True
                continue
            connector.operative = operative
            await self.publish_change(connector)
        return not scheduled

    async def fault(self, evse: int = 1, error_code: str = "GroundFailure") -> None:
        """A hardware fault on a connector: a running session stops."""
        connector = self.connector(evse)
        if connector.transaction is not None:
            await self.stop(evse, "EmergencyStop")
        connector.fault = error_code
        self.log.warning("sim.charger.faulted", evse=evse, error_code=error_code)
        await self.publish_change(connector)

    async def clear_fault(self, evse: int = 1) -> None:
        connector = self.connector(evse)
        connector.fault = None
        await self.publish_change(connector)

    async def wait_change(self, evse: int, at_most: float) -> None:
        """Wait for any change on a connector, or ``at_most`` wall seconds."""
        event = self.connector(evse).changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await event.wait()


def _make_protocol(charger: SimCharger) -> ChargerProtocol:
    if charger.version == "1.6":
        from sim.charger.v16 import Charger16

        return Charger16(charger)
    from sim.charger.v201 import Charger201

    return Charger201(charger)
