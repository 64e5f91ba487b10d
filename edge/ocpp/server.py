"""The OCPP websocket endpoint: ``ws(s)://<edge>:<port><prefix>/<charge_point_id>``.

The prefix is ``ocpp.path_prefix``: ``/ocpp`` unless configured (``""`` for chargers
that only take ``ws://host:port/`` and append their id); the id is the one path segment
after it. Both versions share the port; the websocket subprotocol (``ocpp2.0.1`` or
``ocpp1.6``) picks the handler module, or ``ocpp.default_version`` for a charger that
offers none (it is then upgraded without a subprotocol header, as such chargers
expect). Everything about who may connect is decided before the upgrade, cheapest
first: a lockout after repeated failures (429, see :mod:`edge.ocpp.throttle`), the path
and the charge point id (:mod:`edge.core.ids`), whether the id may connect at all
(:mod:`edge.ocpp.admission`), HTTP Basic credentials (security profiles 1 and 2) and,
with client certificates (profile 3), that the certificate names the charger. Then a
second connection with the id of a connected charger is handled by
``ocpp.replace_connection``: ``newest`` replaces the old one, ``oldest`` keeps it and
probes it (a ping with a short deadline; the newcomer gets 409 and is let in on a later
try if the old one turned out dead), ``reject`` answers 409.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import math
import re
import sqlite3
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Final
from urllib.parse import unquote

import structlog
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from edge.config import SiteConfig
from edge.core.ids import ChargerId, InvalidChargerId, charger_key, parse_charger_id
from edge.metrics import OcppMetrics
from edge.ocpp.admission import Admitted, Refusal, Registered, admit, load_registry
from edge.ocpp.connection import ChargerConnection
from edge.ocpp.local_list import resend_if_older
from edge.ocpp.provisioning import provision, read_configuration
from edge.ocpp.throttle import LockoutPolicy, UpgradeThrottle, address_key
from edge.ocpp.websocket import LeanConnection, LeanServer
from edge.services.site import Site
from ocpp_handlers import v16, v201
from ocpp_handlers.base import Answer, Handler, HandlerContext, Payload
from ocpp_handlers.schemas import SUBPROTOCOLS, Version

log = structlog.get_logger(__name__)
HANDLERS: Final[Mapping[Version, Mapping[str, Handler]]] = {
    Version.V16: v16.HANDLERS,
    Version.V201: v201.HANDLERS,
}
CLOSE_REPLACED: Final = 4000
CLOSE_DUPLICATE: Final = 4001
CLOSE_NOT_ADMITTED: Final = 4003


class BadRequest(ValueError):
    """An upgrade request that is malformed (answered 400)."""


def ocpp_path(prefix: str) -> re.Pattern[str]:
    """The OCPP paths under ``prefix`` (``ocpp.path_prefix``, no trailing slash): the
    prefix, then the charge point id as one segment, then at most a slash."""
    return re.compile(re.escape(prefix) + r"/(?P<id>[^/?#]+)/?")


def charger_id_of(path: str, pattern: re.Pattern[str]) -> ChargerId | None:
    """The charge point id of an OCPP path (``pattern`` from :func:`ocpp_path`); None if
    the path is not one.

    :class:`~edge.core.ids.InvalidChargerId` if the id breaks the identity rules.
    """
    match = pattern.fullmatch(path.split("?", 1)[0])
    if match is None:
        return None
    try:  # strict: bytes that are not UTF-8 are refused, not replaced
        text = unquote(match["id"], errors="strict")
    except UnicodeDecodeError as err:
        raise InvalidChargerId("the charge point identity is not UTF-8") from err
    return parse_charger_id(text)


def basic_credentials(headers: Headers) -> tuple[str, str] | None:
    """The Basic credentials of the request; :class:`BadRequest` if it has two of them."""
    values = headers.get_all("Authorization")
    if len(values) > 1:
        raise BadRequest("more than one Authorization header")
    scheme, _, token = (values[0] if values else "").partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def server_tls(config: SiteConfig) -> ssl.SSLContext | None:
    tls = config.ocpp.tls
    if tls is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file is not None:  # security profile 3
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(tls.client_ca_file)
    return context


def _peer(connection: LeanConnection) -> str:
    peer = connection.remote_address
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


def _certificate_names(connection: LeanConnection) -> set[str]:
    ssl_object = connection.transport.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return set()
    names = {value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"}
    names |= {value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"}
    return names


class OcppServer:
    def __init__(
        self,
        config: SiteConfig,
        site: Site,
        metrics: OcppMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.site = site
        self.metrics = metrics
        self.connections: dict[ChargerId, ChargerConnection] = {}
        # every charger row of the site database, by charger_key; re-read every
        # ocpp.registry_refresh seconds so `evpark chargers ...` reaches a running daemon
        self.registry: dict[str, Registered] = {}
        lockout = config.ocpp.lockout
        self.throttle = UpgradeThrottle(
            LockoutPolicy(
                lockout.failures, lockout.window, lockout.base, lockout.cap, lockout.max_tracked
            ),
            clock,
        )
        # when the ping sent to a charger's connection for a duplicate ("oldest") is due
        self._probes: dict[ChargerId, float] = {}
        self._removed: set[str] = set()  # removed from the database, not yet forgotten
        self._path = ocpp_path(config.ocpp.path_prefix)
        # what a charger that offers no subprotocol speaks (None: it is refused)
        self._default_version = (
            None
            if config.ocpp.default_version is None
            else Version(f"ocpp{config.ocpp.default_version}")
        )
        self._server: LeanServer | None = None
        self._tasks: asyncio.TaskGroup | None = None  # the server's background work
        self._provisioning: set[ChargerId] = set()  # chargers being provisioned now
        self.ready = asyncio.Event()
        self.log = log.bind(site=config.site.id)

    @property
    def port(self) -> int:
        assert self._server is not None, "server is not running"
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def run(self) -> None:
        """Serve until cancelled; then close every charger connection."""
        ocpp = self.config.ocpp
        self.registry = await self.site.store.read(load_registry)
        async with (
            LeanServer(
                self._handle,
                ocpp.host,
                ocpp.port,
                subprotocols=[Subprotocol(v.value) for v in SUBPROTOCOLS],
                select_subprotocol=self._select_subprotocol,
                process_request=self._authorize,
                ping_interval=ocpp.ping_interval or None,  # 0: no pings
                ping_timeout=ocpp.ping_timeout,
                max_size=256 * 1024,
                ssl=server_tls(self.config),
                open_timeout=ocpp.handshake_timeout,
                max_connections=ocpp.max_connections,
                on_refused=self.metrics.connections_refused.inc,
                accept_without_subprotocol=self._default_version is not None,
            ) as server,
            asyncio.TaskGroup() as tasks,
        ):
            self._server = server
            self._tasks = tasks
            tasks.create_task(self._refresh_registry())
            self.log.info(
                "ocpp.listening",
                host=ocpp.host,
                port=self.port,
                path=f"{ocpp.path_prefix}/<charge point id>",
                tls=ocpp.tls is not None,
                ping_interval=ocpp.ping_interval or None,
                default_version=ocpp.default_version,
                replace_connection=self.config.replace_connection,
            )
            self.ready.set()
            try:
                await server.serve_forever()
            finally:
                self._tasks = None

    @staticmethod
    def _select_subprotocol(
        connection: LeanConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        # The charger lists what it speaks in its order of preference; take its first.
        supported = {v.value for v in SUBPROTOCOLS}
        return next((p for p in offered if p in supported), None)

    # --- who may connect ------------------------------------------------------------

    def _authorize(self, connection: LeanConnection, request: Request) -> Response | None:
        address = address_key(_peer(connection))
        try:
            charger_id = charger_id_of(request.path, self._path)
        except InvalidChargerId as err:
            return self._failed(connection, address, None, "bad_id", HTTPStatus.BAD_REQUEST,
                                f"{err}\n", path=request.path[:100])  # fmt: skip
        if charger_id is None:
            expected = f"{self.config.ocpp.path_prefix}/<charge point id>"
            return self._failed(connection, address, None, "bad_path", HTTPStatus.NOT_FOUND,
                                f"use {expected}\n", path=request.path[:100],
                                expected=expected)  # fmt: skip
        key = charger_key(charger_id)
        lockout = self.throttle.locked(address, key)
        if lockout is not None:  # refused before anything costly
            self.metrics.throttled.labels(lockout.scope.value).inc()
            self.log.debug("ocpp.connect.throttled", charger=charger_id, remote=address,
                           scope=lockout.scope.value)  # fmt: skip
            response = connection.respond(HTTPStatus.TOO_MANY_REQUESTS, "too many failures\n")
            response.headers["Retry-After"] = lockout.retry_after_header
            return response
        refusal = self._subprotocol_refusal(connection, request, charger_id)
        if refusal is not None:
            return refusal
        try:
            creds = basic_credentials(request.headers)
        except BadRequest as err:
            return self._failed(connection, address, None, "bad_request", HTTPStatus.BAD_REQUEST,
                                f"{err}\n", charger=charger_id)  # fmt: skip
        verdict = admit(self.config, charger_id, self.registry.get(key))
        if verdict is Refusal.UNKNOWN:
            return self._failed(connection, address, None, "unknown", HTTPStatus.NOT_FOUND,
                                "unknown charge point\n", charger=charger_id)  # fmt: skip
        if verdict is Refusal.NEEDS_CREDENTIALS:
            return self._failed(connection, address, None, "needs_credentials",
                                HTTPStatus.FORBIDDEN,
                                "this charger needs a password or a client certificate\n",
                                charger=charger_id)  # fmt: skip
        assert isinstance(verdict, Admitted)
        if verdict.password is not None and not _password_matches(creds, verdict):
            return self._failed(connection, address, key, "bad_credentials",
                                HTTPStatus.UNAUTHORIZED, "wrong credentials\n",
                                charger=verdict.id)  # fmt: skip
        if self.config.mutual_tls and key not in {
            charger_key(name) for name in _certificate_names(connection)
        }:
            return self._failed(connection, address, key, "certificate_mismatch",
                                HTTPStatus.FORBIDDEN, "certificate is not this charger's\n",
                                charger=verdict.id)  # fmt: skip
        self.throttle.succeeded(address, key)
        return self._duplicate(connection, verdict.id, address)

    def _subprotocol_refusal(
        self, connection: LeanConnection, request: Request, charger_id: ChargerId
    ) -> Response | None:
        """400 unless the charger offers a version we speak, or offers none and
        ``ocpp.default_version`` says what it speaks."""
        offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
        names = {p.strip() for p in offered.split(",")} - {""}
        if names & {v.value for v in SUBPROTOCOLS}:
            return None
        if not names and self._default_version is not None:
            return None
        self.log.warning("ocpp.connect.no_subprotocol", charger=charger_id, offered=offered[:80])
        return connection.respond(
            HTTPStatus.BAD_REQUEST, "offer subprotocol ocpp2.0.1 or ocpp1.6\n"
        )

    def _failed(
        self,
        connection: LeanConnection,
        address: str,
        key: str | None,
        reason: str,
        status: HTTPStatus,
        text: str,
        **context: str,
    ) -> Response:
        """Count a refused upgrade against the address (and the id, if it names a
        charger the site knows: unknown ids are not worth remembering)."""
        self.metrics.upgrade_failures.labels(reason).inc()
        self.log.warning(f"ocpp.connect.{reason}", remote=address, **context)
        for lockout in self.throttle.failed(address, key):
            self.metrics.lockouts.labels(lockout.scope.value).inc()
            self.log.warning("ocpp.connect.locked_out", scope=lockout.scope.value,
                             key=lockout.key, seconds=round(lockout.retry_after, 1))  # fmt: skip
        return connection.respond(status, text)

    def _duplicate(
        self, connection: LeanConnection, charger_id: ChargerId, address: str
    ) -> Response | None:
        """A second connection with the id of a connected charger: ocpp.replace_connection."""
        previous = self.connections.get(charger_id)
        if previous is None or previous.ws.protocol.state is not State.OPEN:
            return None
        mode = self.config.replace_connection
        outcome = {"newest": "replaced", "oldest": "probed", "reject": "refused"}[mode]
        self.metrics.duplicates.labels(outcome).inc()
        self.log.warning("ocpp.connect.duplicate", charger=charger_id, remote=address,
                         previous=str(previous.ws.remote_address), mode=mode,
                         outcome=outcome)  # fmt: skip
        if mode == "newest":
            return None
        response = connection.respond(HTTPStatus.CONFLICT, "this charger is connected already\n")
        if mode == "oldest":
            # Keep the live connection; if it does not answer a ping soon it is dead, it
            # is closed, and the newcomer's next try gets in.
            timeout = self.config.ocpp.duplicate_probe_timeout
            now = asyncio.get_running_loop().time()
            if self._probes.get(charger_id, now) <= now:  # none out: a retry must not defer it
                previous.ws.probe(timeout)
                self._probes[charger_id] = now + timeout
            response.headers["Retry-After"] = str(max(1, math.ceil(timeout)))
        return response

    def _canonical(self, charger_id: ChargerId) -> ChargerId:
        """The spelling the site knows a charger by (ids ignore case)."""
        configured = self.config.charger(charger_id)
        if configured is not None:
            return ChargerId(configured.id)
        registered = self.registry.get(charger_key(charger_id))
        return registered.id if registered is not None else charger_id

    async def _refresh_registry(self) -> None:
        while True:
            await asyncio.sleep(self.config.ocpp.registry_refresh)
            try:
                registry = await self.site.store.read(load_registry)
            except sqlite3.Error as err:
                self.log.warning("ocpp.registry.refresh_failed", error=str(err))
                continue
            await self._apply_registry(registry)

    async def _apply_registry(self, registry: dict[str, Registered]) -> None:
        """Disconnect the chargers that may no longer connect (revoked or removed), and
        forget the removed ones."""
        previous, self.registry = self.registry, registry

        def removed(charger_id: ChargerId) -> bool:
            # was there at the last read and is gone now (a row that is not there yet is
            # a charger connecting for the first time: its row is on its way)
            key = charger_key(charger_id)
            return key in previous and key not in registry and not self.config.charger(charger_id)

        for charger_id, connection in list(self.connections.items()):
            verdict = admit(self.config, charger_id, registry.get(charger_key(charger_id)))
            if removed(charger_id) or isinstance(verdict, Refusal):
                self.log.warning("ocpp.charger.not_admitted", charger=charger_id)
                await connection.close(CLOSE_NOT_ADMITTED, "no longer admitted")
        # forgotten once it is disconnected (so that its going offline is recorded first)
        self._removed = {k for k in self._removed if k not in registry}
        for charger_id in list(self.site.chargers):
            key = charger_key(charger_id)
            if removed(charger_id):
                self._removed.add(key)
            if key in self._removed and charger_id not in self.connections:
                self.site.forget(charger_id)
                self._removed.discard(key)

    # --- a connection ---------------------------------------------------------------

    async def _handle(self, ws: LeanConnection) -> None:
        assert ws.request is not None
        try:
            path_id = charger_id_of(ws.request.path, self._path)
        except InvalidChargerId:  # checked before the upgrade
            path_id = None
        version = self._default_version if ws.subprotocol is None else Version(ws.subprotocol)
        if path_id is None or version is None:  # checked before the upgrade
            await ws.close(1002, "no OCPP subprotocol")
            return
        charger_id = self._canonical(path_id)
        previous = self.connections.get(charger_id)
        if previous is not None and self.config.replace_connection != "newest":
            # two upgrades for one id at once: the first one in stays
            self.metrics.duplicates.labels("refused").inc()
            self.log.warning("ocpp.connect.duplicate", charger=charger_id,
                             mode=self.config.replace_connection, outcome="refused")  # fmt: skip
            await ws.close(CLOSE_DUPLICATE, "this charger is connected already")
            return
        connection = ChargerConnection(
            ws,
            HandlerContext(self.site, charger_id, version),
            self._handlers(charger_id, version),
            self.metrics,
            strict=self.config.charger_setup(charger_id).validation == "strict",
        )
        self.connections[charger_id] = connection
        if previous is not None:
            self.log.info("ocpp.connection.replaced", charger=charger_id)
            await previous.close(CLOSE_REPLACED, "replaced by a new connection")
        self.metrics.connected.labels(version.value).inc()
        # subprotocol None: the charger offered none and speaks ocpp.default_version
        connection.log.info(
            "ocpp.connected", remote=str(ws.remote_address), subprotocol=ws.subprotocol
        )
        try:
            await self.site.connected(charger_id, version.value)
            await connection.serve()
        finally:
            self.metrics.connected.labels(version.value).dec()
            if self.connections.get(charger_id) is connection:
                del self.connections[charger_id]
                self._probes.pop(charger_id, None)
                await self.site.disconnected(
                    charger_id, reason=str(ws.close_reason or ws.close_code)
                )
            connection.log.info("ocpp.disconnected", code=ws.close_code)

    def _handlers(self, charger_id: ChargerId, version: Version) -> Mapping[str, Handler]:
        """The version's handlers; an accepted boot is followed by the local list check."""
        handlers = HANDLERS[version]
        boot = handlers["BootNotification"]

        async def boot_then_check_list(ctx: HandlerContext, payload: Payload) -> Payload:
            answer = boot(ctx, payload)
            assert not isinstance(answer, Answer), "a boot is answered once it is stored"
            result = await answer
            accepted = result.get("status") == "Accepted"
            connection = self.connections.get(charger_id)
            if connection is not None:  # 2.0.1 B02.FR.09: a Pending station sends little
                connection.pending = not accepted
            assert self._tasks is not None
            if accepted and self.site.id_tags_version > 0:
                # a task of the server's: it starts after the boot's answer has gone out
                self._tasks.create_task(
                    resend_if_older(self, charger_id), name=f"local-list-check-{charger_id}"
                )
            await self._provision_if_needed(charger_id, version, pending=not accepted)
            return result

        return {**handlers, "BootNotification": boot_then_check_list}

    async def _provision_if_needed(
        self, charger_id: ChargerId, version: Version, *, pending: bool
    ) -> None:
        """Provision after this boot's answer if it calls for it, once at a time."""
        if charger_id in self._provisioning:
            return  # a Pending charger booting again while it is being provisioned
        if not await self.site.provisioning.needs_run(charger_id, version.value):
            return
        self._provisioning.add(charger_id)

        async def run() -> None:
            try:
                await provision(self, charger_id, pending=pending)
            finally:
                self._provisioning.discard(charger_id)

        assert self._tasks is not None
        self._tasks.create_task(run(), name=f"provisioning-{charger_id}")

    async def read_configuration(self, charger_id: ChargerId) -> dict[str, str | None]:
        """Read a connected charger's whole configuration and store it (the API's
        re-read); raises what :func:`edge.ocpp.provisioning.read_configuration` raises."""
        return await read_configuration(self, charger_id)


def _password_matches(creds: tuple[str, str] | None, admitted: Admitted) -> bool:
    assert admitted.password is not None
    if creds is None or charger_key(creds[0]) != charger_key(admitted.id):
        return False
    return hmac.compare_digest(creds[1].encode(), admitted.password.encode())
