"""Logins, sessions, CSRF and roles for the web UI, and the guard of the JSON API.

* A login creates a server-side session: a random 256-bit token in an ``HttpOnly``,
  ``SameSite=Strict`` cookie (``Secure`` when the request came over https, directly or
  through a proxy that says ``X-Forwarded-Proto: https``); the store keeps only its
  SHA-256, with the user and the session's CSRF token. Sessions expire after
  :data:`SESSION_LIFETIME`; logging out, a new password or deleting the user ends them.
* Every POST carries the session's CSRF token (form field ``csrf_token`` or header
  ``X-CSRF-Token``), compared in constant time; a cross-origin ``Origin`` is refused too.
  The login form has its own double-submit token (cookie and field).
* Failed and unfinished logins are limited per client address (:class:`LoginThrottle`),
  and only a few argon2 checks run at once (:class:`Auth`): more logins waiting get a 429.
* The JSON API (``/api/...``) is open to local requests (:func:`local_request`: the
  socket's peer is loopback, ``Host`` names this host, no proxy header and no foreign
  ``Origin``) when the HTTP server listens on a loopback address only (local tools, the
  demo). Otherwise :class:`ApiGuard` requires a UI session (and the CSRF header for
  changes) or an API token (``Authorization: Bearer``): reads need a viewer, changes a
  technician.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

import orjson
import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from edge.services import users as u
from edge.storage.sqlite import SqliteStore, Unit

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]

SESSION_COOKIE: Final = "evpark_session"
LOGIN_COOKIE: Final = "evpark_login"
CSRF_HEADER: Final = "x-csrf-token"
SESSION_LIFETIME: Final = timedelta(hours=12)
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Headers a reverse proxy adds: a request that has one came from elsewhere.
PROXY_HEADERS: Final = frozenset(
    {"forwarded", "x-real-ip", "x-client-ip", "true-client-ip", "x-cluster-client-ip",
     "cf-connecting-ip", "client-ip", "via"}
)  # fmt: skip


def _host_name(value: str) -> str:
    """The name of a ``Host`` header or an origin's netloc, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def local_request(scope: Scope, own_host: str) -> bool:
    """Made on this host by a local tool: the socket's peer is loopback, the single
    ``Host`` header names a loopback address, ``localhost`` or ``own_host`` (a DNS
    rebinding attack names the attacker's domain), no header says a proxy forwarded it,
    and a browser's ``Origin``, if any, is local too (another site's page is not)."""
    client = scope.get("client")
    if not client or not is_loopback(client[0]):
        return False
    hosts: list[str] = []
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name in PROXY_HEADERS or name.startswith("x-forwarded-"):
            return False
        value = raw_value.decode("latin-1")
        if name == "host":
            hosts.append(value)
        elif name == "origin" and not _local_name(_host_name(urlsplit(value).netloc), own_host):
            return False
    return len(hosts) == 1 and _local_name(_host_name(hosts[0]), own_host)


def _local_name(name: str, own_host: str) -> bool:
    return name != "" and (name == own_host.lower() or is_loopback(name))


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def cross_origin(request: Request) -> bool:
    """A browser's request from another site (Origin names another host)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()


class LoginThrottle:
    """At most ``limit`` failed or unfinished logins per client address within ``window``:
    a guesser sending many at once gets no more checked than one sending them in turn."""

    def __init__(
        self, limit: int = 10, window: timedelta = timedelta(minutes=5), max_clients: int = 10_000
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._failures: dict[str, deque[datetime]] = {}
        self._in_flight: dict[str, int] = {}

    def retry_after(self, client: str, now: datetime) -> float | None:
        """Seconds until ``client`` may try again, or None if it may now."""
        failures = self._prune(client, now)
        if len(failures) >= self.limit:
            return max(1.0, (failures[0] + self.window - now).total_seconds())
        if len(failures) + self._in_flight.get(client, 0) >= self.limit:
            return 1.0  # when the running ones are done
        return None

    def begin(self, client: str, now: datetime) -> float | None:
        """An attempt starts (counted until :meth:`end`), or the seconds to wait."""
        wait = self.retry_after(client, now)
        if wait is None:
            self._in_flight[client] = self._in_flight.get(client, 0) + 1
        return wait

    def end(self, client: str) -> None:
        left = self._in_flight.get(client, 1) - 1
        if left:
            self._in_flight[client] = left
        else:
            self._in_flight.pop(client, None)

    def failed(self, client: str, now: datetime) -> None:
        if client not in self._failures and len(self._failures) >= self.max_clients:
            oldest = min(self._failures, key=lambda c: self._failures[c][-1])
            del self._failures[oldest]
        self._failures.setdefault(client, deque(maxlen=self.limit)).append(now)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _prune(self, client: str, now: datetime) -> deque[datetime]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] + self.window <= now:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures


class LoginRefused(Exception):
    """Wrong user name or password (which one is not said)."""


class LoginThrottled(Exception):
    def __init__(self, retry_after: float, reason: str = "too many failed logins") -> None:
        super().__init__(f"{reason}: try again in {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str
    session: u.LoginSession


class Auth:
    """Users, sessions and tokens of one site, over its store."""

    def __init__(
        self,
        store: SqliteStore,
        clock: Clock,
        passwords: u.Passwords | None = None,
        throttle: LoginThrottle | None = None,
        concurrency: int = 2,
        queue: int = 8,
    ) -> None:
        self.store = store
        self.clock = clock
        self.passwords = passwords or u.Passwords()
        self.throttle = throttle or LoginThrottle()
        # argon2 costs tens of ms of CPU and memory per check: a few at once, a short
        # queue, and a 429 beyond it (many addresses guessing at once).
        self._checks = asyncio.Semaphore(concurrency)
        self._queue = queue
        self._waiting = 0
        self.verifications = 0  # for tests and the curious

    async def users_exist(self) -> bool:
        return await self.store.read(u.count_users) > 0

    async def login(self, username: str, password: str, client: str) -> NewSession:
        now = self.clock()
        wait = self.throttle.begin(client, now)
        if wait is not None:
            log.warning("ui.login.throttled", client=client, username=username[:64])
            raise LoginThrottled(wait)
        try:
            ok, found = await self._check(username, password, client)
        finally:
            self.throttle.end(client)
        if not ok or found is None:
            self.throttle.failed(client, now)
            log.warning("ui.login.failed", client=client, username=username[:64])
            raise LoginRefused()
        self.throttle.succeeded(client)
        user = found[0]
        token, csrf = u.new_token(), u.new_token()
        expires = now + SESSION_LIFETIME
        unit = Unit()
        u.delete_expired_sessions(unit, now)
        if self.passwords.needs_rehash(found[1]):  # stronger parameters since it was set
            rehashed = await asyncio.to_thread(self.passwords.hash, password)
            u.update_password(unit, user.username, rehashed, now)
        u.insert_session(unit, u.token_hash(token), user.id, csrf, now, expires, client)
        u.record_login(unit, user.id, now)
        await self.store.write(unit)
        log.info("ui.login.succeeded", client=client, username=user.username, role=user.role)
        return NewSession(token, u.LoginSession(user, csrf, expires))

    async def _check(
        self, username: str, password: str, client: str
    ) -> tuple[bool, tuple[u.User, str] | None]:
        if self._checks.locked() and self._waiting >= self._queue:
            log.warning("ui.login.busy", client=client, waiting=self._waiting)
            raise LoginThrottled(1.0, "the server is busy checking other logins")
        self._waiting += 1
        try:
            await self._checks.acquire()
        finally:
            self._waiting -= 1
        try:
            found = await self.store.read(lambda c: u.password_hash_of(c, username))
            stored = found[1] if found else None
            self.verifications += 1
            # argon2 takes tens of milliseconds of CPU: not on the event loop
            return await asyncio.to_thread(self.passwords.verify, stored, password), found
        finally:
            self._checks.release()

    async def session(self, token: str | None) -> u.LoginSession | None:
        if not token or len(token) > 100:
            return None
        hashed = u.token_hash(token)
        now = self.clock()
        return await self.store.read(lambda c: u.find_session(c, hashed, now))

    async def logout(self, token: str) -> None:
        unit = Unit()
        u.delete_session(unit, u.token_hash(token))
        await self.store.write(unit)

    async def bearer(self, token: str) -> u.User | None:
        if not token or len(token) > 100:
            return None
        hashed = u.token_hash(token)
        return await self.store.read(lambda c: u.find_token_user(c, hashed))


class ApiGuard:
    """ASGI middleware: the JSON API needs a session or an API token unless it is local."""

    def __init__(self, app: ASGIApp, auth: Auth, open_api: bool, own_host: str = "") -> None:
        self.app = app
        self.auth = auth
        self.open_api = open_api
        self.own_host = own_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_api(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self.open_api and local_request(scope, self.own_host):
            await self.app(scope, receive, send)
            return
        needed = u.Role.TECHNICIAN if request.method in UNSAFE_METHODS else u.Role.VIEWER
        user: u.User | None = None
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            user = await self.auth.bearer(authorization[7:].strip())
        else:
            session = await self.auth.session(request.cookies.get(SESSION_COOKIE))
            if session is not None:
                user = session.user
                if needed is u.Role.TECHNICIAN and not same_token(
                    request.headers.get(CSRF_HEADER), session.csrf_token
                ):
                    await _deny(send, 403, "the X-CSRF-Token header is missing or wrong")
                    return
        if user is None:
            await _deny(send, 401, "log in or send an API token (Authorization: Bearer ...)")
            return
        if not user.role.allows(needed):
            await _deny(send, 403, f"this needs the {needed} role")
            return
        await self.app(scope, receive, send)


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


async def _deny(send: Send, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="evpark"'))
    # A refused request's body is never read: close rather than read it to reuse the line.
    headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
