"""The OCPP websocket endpoint: ``ws(s)://<edge>:<port>/ocpp/<charge_point_id>``.

Both versions share the port; the websocket subprotocol (``ocpp2.0.1`` or ``ocpp1.6``)
picks the handler module. Everything about who may connect is decided before the
upgrade: the path, the charge point id, HTTP Basic credentials (security profile 1 and
2) and, with client certificates (profile 3), that the certificate names the charger.
A charger that reconnects replaces its old connection.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import re
import ssl
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Final
from urllib.parse import unquote

import structlog
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from edge.config import ID_PATTERN, SiteConfig
from edge.ids import ChargerId
from edge.metrics import OcppMetrics
from edge.ocpp_connection import ChargerConnection
from edge.site import Site
from edge.websocket_server import LeanConnection, LeanServer
from ocpp_handlers import v16, v201
from ocpp_handlers.base import Handler, HandlerContext
from ocpp_handlers.schemas import SUBPROTOCOLS, Version

log = structlog.get_logger(__name__)
PATH: Final = re.compile(r"^/ocpp/(?P<id>[^/?#]+)/?$")
_CHARGER_ID: Final = re.compile(ID_PATTERN)
HANDLERS: Final[Mapping[Version, Mapping[str, Handler]]] = {
    Version.V16: v16.HANDLERS,
    Version.V201: v201.HANDLERS,
}
CLOSE_REPLACED: Final = 4000


def charger_id_of(path: str) -> ChargerId | None:
    match = PATH.match(path.split("?", 1)[0])
    if match is None:
        return None
    charger_id = unquote(match["id"])
    return ChargerId(charger_id) if _CHARGER_ID.match(charger_id) else None


def basic_credentials(headers: Headers) -> tuple[str, str] | None:
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
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


def _certificate_names(connection: LeanConnection) -> set[str]:
    ssl_object = connection.transport.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return set()
    names = {value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"}
    names |= {value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"}
    return names


class OcppServer:
    def __init__(self, config: SiteConfig, site: Site, metrics: OcppMetrics) -> None:
        self.config = config
        self.site = site
        self.metrics = metrics
        self.connections: dict[ChargerId, ChargerConnection] = {}
        self._server: LeanServer | None = None
        self.ready = asyncio.Event()

    @property
    def port(self) -> int:
        assert self._server is not None, "server is not running"
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def run(self) -> None:
        """Serve until cancelled; then close every charger connection."""
        ocpp = self.config.ocpp
        async with LeanServer(
            self._handle,
            ocpp.host,
            ocpp.port,
            subprotocols=[Subprotocol(v.value) for v in SUBPROTOCOLS],
            select_subprotocol=self._select_subprotocol,
            process_request=self._authorize,
            ping_interval=ocpp.ping_interval,
            ping_timeout=ocpp.ping_timeout,
            max_size=256 * 1024,
            ssl=server_tls(self.config),
            open_timeout=ocpp.handshake_timeout,
            max_connections=ocpp.max_connections,
            on_refused=lambda: self.metrics.message("(connection)", "refused"),
        ) as server:
            self._server = server
            log.info("ocpp.listening", host=ocpp.host, port=self.port, tls=ocpp.tls is not None)
            self.ready.set()
            await server.serve_forever()

    @staticmethod
    def _select_subprotocol(
        connection: LeanConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        # The charger lists what it speaks in its order of preference; take its first.
        supported = {v.value for v in SUBPROTOCOLS}
        return next((p for p in offered if p in supported), None)

    def _authorize(self, connection: LeanConnection, request: Request) -> Response | None:
        charger_id = charger_id_of(request.path)
        if charger_id is None:
            log.warning("ocpp.connect.bad_path", path=request.path[:100])
            return connection.respond(HTTPStatus.NOT_FOUND, "use /ocpp/<charge point id>\n")
        offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
        if not any(v.value in offered for v in SUBPROTOCOLS):
            log.warning("ocpp.connect.no_subprotocol", charger=charger_id, offered=offered[:80])
            return connection.respond(
                HTTPStatus.BAD_REQUEST, "offer subprotocol ocpp2.0.1 or ocpp1.6\n"
            )
        configured = self.config.charger(charger_id)
        unknown = configured is None and not self.site.is_known(charger_id)
        if unknown and not self.config.ocpp.auto_register:
            log.warning("ocpp.connect.unknown", charger=charger_id)
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown charge point\n")
        if configured is not None and configured.password:
            creds = basic_credentials(request.headers)
            if (
                creds is None
                or creds[0] != charger_id
                or not hmac.compare_digest(creds[1].encode(), configured.password.encode())
            ):
                log.warning("ocpp.connect.bad_credentials", charger=charger_id)
                return connection.respond(HTTPStatus.UNAUTHORIZED, "wrong credentials\n")
        mutual_tls = self.config.ocpp.tls is not None and self.config.ocpp.tls.client_ca_file
        if mutual_tls and charger_id not in _certificate_names(connection):
            log.warning("ocpp.connect.certificate_mismatch", charger=charger_id)
            return connection.respond(HTTPStatus.FORBIDDEN, "certificate is not this charger's\n")
        return None

    async def _handle(self, ws: LeanConnection) -> None:
        assert ws.request is not None
        charger_id = charger_id_of(ws.request.path)
        if charger_id is None or ws.subprotocol is None:  # checked before the upgrade
            await ws.close(1002, "no OCPP subprotocol")
            return
        version = Version(ws.subprotocol)
        connection = ChargerConnection(
            ws, HandlerContext(self.site, charger_id, version), HANDLERS[version], self.metrics
        )
        previous = self.connections.get(charger_id)
        self.connections[charger_id] = connection
        if previous is not None:
            log.info("ocpp.connection.replaced", charger=charger_id)
            await previous.close(CLOSE_REPLACED, "replaced by a new connection")
        self.metrics.connected.labels(version.value).inc()
        connection.log.info("ocpp.connected", remote=str(ws.remote_address))
        try:
            await self.site.connected(charger_id, version.value)
            await connection.serve()
        finally:
            self.metrics.connected.labels(version.value).dec()
            if self.connections.get(charger_id) is connection:
                del self.connections[charger_id]
                await self.site.disconnected(
                    charger_id, reason=str(ws.close_reason or ws.close_code)
                )
            connection.log.info("ocpp.disconnected", code=ws.close_code)
