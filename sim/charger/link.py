"""A simulated charger's link to the central system, across connections.

The link connects (subprotocol, HTTP Basic auth, TLS), boots (retrying while the central
system answers Pending or Rejected), heartbeats, delivers the transaction queue in order
and reconnects with backoff and jitter when the connection drops. It records what was
said both ways, for tests and the demo. What each message holds is the protocol
version's business (:class:`~sim.charger.protocol.ChargerProtocol`); what the charger
does with its connectors is the core's (:mod:`sim.charger.core`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from common.backoff import Backoff
from common.timestamps import format_timestamp
from sim.charger.rpc import (
    CallError,
    CallTimeout,
    ConnectionLost,
    Exchange,
    NotConnected,
    OcppConnection,
    Reply,
)

if TYPE_CHECKING:
    from sim.charger.core import SimCharger

_CALL_FAILURES = (CallTimeout, CallError, ConnectionLost, NotConnected)


class CentralSystemLink:
    def __init__(self, charger: SimCharger) -> None:
        self.charger = charger
        config = charger.config
        self.backoff = Backoff(base=config.backoff_initial, cap=config.backoff_max, rng=charger.rng)
        # What happened, for tests and the demo: calls received from the central system,
        # messages sent, and the last answer to each action.
        self.received: list[Exchange] = []
        self.sent: list[Exchange] = []
        self.responses: dict[str, dict[str, Any]] = {}
        self.boot_count = 0
        self.connection_count = 0
        self.boot_reason = "PowerUp"
        # The HTTP Basic password; a central system may change it (1.6 AuthorizationKey,
        # 2.0.1 BasicAuthPassword), and the next connection uses the new one.
        self.password = config.password
        # Set once the charger stops: no more connecting.
        self.closing = False

        self._conn: OcppConnection | None = None
        self._ws: ClientConnection | None = None
        self._booted = False
        self._online = asyncio.Event()
        self._offline = asyncio.Event()
        self._offline.set()
        self._allowed_online = asyncio.Event()
        self._allowed_online.set()
        self._reconnect_now = asyncio.Event()
        self._boot_now = asyncio.Event()
        self._received_changed = asyncio.Event()

    # -- state --------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """Connected and booted (BootNotification accepted)."""
        return self._booted

    async def wait_online(self) -> None:
        await self._online.wait()

    async def wait_offline(self) -> None:
        await self._offline.wait()

    async def wait_for_command(self, action: str) -> Exchange:
        while True:
            found = next((e for e in self.received if e.action == action), None)
            if found is not None:
                return found
            await self._received_changed.wait()
            self._received_changed.clear()

    # -- calls ----------------------------------------------------------------------

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one call on the booted connection; :class:`NotConnected` when offline."""
        conn = self._conn
        if conn is None or not self.online:
            raise NotConnected(f"{self.charger.id} is offline")
        return await self._call_on(conn, action, payload)

    async def call_asked(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send what the central system asked for (a report), booted or still Pending:
        the one kind of call a Pending charger may make besides its boot."""
        conn = self._conn
        if conn is None:
            raise NotConnected(f"{self.charger.id} is offline")
        return await self._call_on(conn, action, payload)

    async def send_or_log(self, action: str, payload: dict[str, Any]) -> None:
        """Send a call whose answer does not matter; a failure is only logged."""
        try:
            await self.call(action, payload)
        except _CALL_FAILURES as err:
            self.charger.log.info("sim.charger.call_failed", action=action, error=str(err))

    async def _call_on(
        self, conn: OcppConnection, action: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        self.sent.append(Exchange("sent", action, payload))
        response = await conn.call(action, payload)
        self.responses[action] = response
        return response

    async def _security_event(self, conn: OcppConnection, boot_reason: str) -> None:
        """The boot's security event; a central system without the security extension
        may refuse it, which costs the charger nothing but a log line."""
        charger = self.charger
        event = "StartupOfTheDevice" if boot_reason == "PowerUp" else "ResetOrReboot"
        payload = {"type": event, "timestamp": format_timestamp(charger.clock.now())}
        try:
            await self._call_on(conn, "SecurityEventNotification", payload)
        except CallError as err:
            charger.log.info("sim.charger.security_event_refused", error=str(err))

    async def _dispatch(self, action: str, payload: dict[str, Any]) -> Reply:
        self.received.append(Exchange("received", action, payload))
        self._received_changed.set()
        self.charger.log.info("sim.charger.command", action=action)
        return await self.charger.protocol.handle(action, payload)

    # -- connecting -----------------------------------------------------------------

    async def run(self) -> None:
        """Connect, and connect again after every drop, until :attr:`closing`."""
        log = self.charger.log
        while not self.closing:
            await self._allowed_online.wait()
            self._reconnect_now.clear()
            try:
                await self._connect_once()
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as err:
                log.warning("sim.charger.connect_failed", error=str(err) or type(err).__name__)
            if self.closing:
                return
            if self._reconnect_now.is_set():
                delay = 0.05
            else:
                delay = self.backoff.next_delay()
                log.info("sim.charger.reconnect_wait", seconds=round(delay, 2))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._reconnect_now.wait()

    def _headers(self) -> dict[str, str]:
        if not self.password:
            return {}
        token = base64.b64encode(f"{self.charger.id}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _tls(self) -> ssl.SSLContext | None:
        config = self.charger.config
        if not config.endpoint.startswith("wss://"):
            return None
        context = ssl.create_default_context(cafile=config.ca_file)
        if config.cert_file is not None:
            context.load_cert_chain(config.cert_file, config.key_file)
        return context

    async def _connect_once(self) -> None:
        charger = self.charger
        config, log = charger.config, charger.log
        async with connect(
            config.endpoint,
            subprotocols=[Subprotocol(config.subprotocol)],
            additional_headers=self._headers(),
            ssl=self._tls(),
            open_timeout=10,
            max_size=2**20,
        ) as ws:
            if ws.subprotocol != config.subprotocol:
                log.error("sim.charger.subprotocol_refused", got=ws.subprotocol)
                return
            self.connection_count += 1
            conn = OcppConnection(ws, config.version, charger.schedule, config.call_timeout, log)
            self._ws, self._conn = ws, conn
            log.info("sim.charger.connected")
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(conn.serve(self._dispatch))
                    group.create_task(self._session(conn))
            except* ConnectionLost:
                # On 3.11 a child's error outranks a pending cancellation, so this can
                # swallow one: the loop also ends on `closing`, set before cancelling.
                log.info("sim.charger.disconnected", queued=len(charger.queue))
            finally:
                self._booted = False
                self._online.clear()
                self._offline.set()
                self._ws = self._conn = None
                for connector in charger.connectors.values():
                    connector.last_sent_status = None

    async def _session(self, conn: OcppConnection) -> None:
        charger = self.charger
        if (
            charger.config.boot_on_reconnect
            or self.boot_count == 0
            or self.boot_reason != "Unknown"
        ):
            reason = self.boot_reason
            await self._boot(conn)
            if charger.config.security_event_at_boot:
                await self._security_event(conn, reason)
        self._booted = True
        self._offline.clear()
        self.backoff.reset()
        for action, payload in charger.protocol.station_requests(charger.clock.now()):
            await self.send_or_log(action, payload)
        for connector in charger.connectors.values():
            await charger.publish_status(connector)
        self._online.set()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._heartbeat_loop(conn))
            group.create_task(self._deliver_queue(conn))

    async def _boot(self, conn: OcppConnection) -> None:
        charger = self.charger
        log, protocol = charger.log, charger.protocol
        while True:
            self._boot_now.clear()
            wait = charger.config.default_interval
            try:
                response = await self._call_on(
                    conn, "BootNotification", protocol.boot_request(self.boot_reason)
                )
            except (CallTimeout, CallError) as err:
                log.warning("sim.charger.boot_failed", error=str(err))
            else:
                interval = int(response["interval"])
                if response["status"] == "Accepted":
                    if interval > 0:
                        protocol.settings.set_heartbeat_interval(interval)
                    self.boot_count += 1
                    self.boot_reason = "Unknown"
                    log.info("sim.charger.booted", heartbeat_interval=interval)
                    return
                wait = interval if interval > 0 else wait
                log.info("sim.charger.boot_" + response["status"].lower(), retry_in=wait)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._boot_now.wait()

    def trigger_boot(self) -> None:
        """A central system's TriggerMessage(BootNotification) while Pending."""
        self._boot_now.set()

    async def _heartbeat_loop(self, conn: OcppConnection) -> None:
        charger = self.charger
        while True:
            await charger.clock.sleep(charger.protocol.settings.heartbeat_interval())
            try:
                await self._call_on(conn, "Heartbeat", {})
            except (CallTimeout, CallError) as err:
                charger.log.warning("sim.charger.heartbeat_failed", error=str(err))

    async def _deliver_queue(self, conn: OcppConnection) -> None:
        """Deliver the transaction queue in order; the head stays until answered."""
        charger = self.charger
        protocol, queue, log = charger.protocol, charger.queue, charger.log
        settings = protocol.settings
        while True:
            message = await queue.head()
            payload = protocol.prepare(message)
            if payload is None:
                log.warning("sim.charger.tx_message_dropped", action=message.action)
                queue.pop(message, None)
                continue
            try:
                response = await self._call_on(conn, message.action, payload)
            except (CallTimeout, CallError) as err:
                message.attempts += 1
                if message.attempts >= settings.tx_message_attempts():
                    log.warning(
                        "sim.charger.tx_message_given_up", action=message.action, error=str(err)
                    )
                    queue.pop(message, None)
                else:
                    wait = settings.tx_message_retry_interval() * message.attempts
                    await charger.clock.sleep(wait)
                continue
            queue.pop(message, response)
            protocol.delivered(message, response)

    # -- dropping and restarting ----------------------------------------------------

    async def disconnect(self, *, abrupt: bool = True) -> None:
        self._allowed_online.clear()
        await self._drop(abrupt=abrupt)
        await self.wait_offline()

    def reconnect(self) -> None:
        self._allowed_online.set()
        self._reconnect_now.set()

    async def restart(self, boot_reason: str) -> None:
        """Close the connection and connect and boot again at once (a reset)."""
        self.boot_reason = boot_reason
        await self._drop(abrupt=False)
        self._reconnect_now.set()

    async def close(self) -> None:
        """Stop connecting, and close the connection if there is one."""
        self.closing = True
        await self._drop(abrupt=False)

    async def _drop(self, *, abrupt: bool) -> None:
        ws = self._ws
        if ws is None:
            return
        if abrupt:
            ws.transport.abort()
        else:
            await ws.close()
