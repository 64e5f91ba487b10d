"""The gateway as ASGI middleware in front of the services' routes.

For every HTTP request: a request id (the client's ``X-Request-ID`` or a new one, echoed
in the answer and bound to the logs), authentication by API key (public: health and the
OpenAPI docs), the per-key rate limit (429 with ``Retry-After``), identity headers for
the services (:mod:`central.auth`), routing (a path owned by a service run separately is
proxied to it, the rest goes to the in-process app), and one access-log line.

Failed authentications count against the client's address
(:mod:`central.gateway.clients`); an address over its budget gets 429 before any key is
looked up, except for keys verified recently (held in memory, no lookup).
A service that is down gives 503 with ``Retry-After`` for its paths only; how long a
service may take depends on the route (:mod:`central.gateway.timeouts`).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Mapping

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.auth import (
    IDENTITY_HEADERS,
    INTERNAL_HEADER,
    KEY_ID_HEADER,
    SCOPE_HEADER,
    SITE_HEADER,
    USER_HEADER,
    VEHICLES_HEADER,
    vehicles_header,
)
from central.gateway.clients import Network, client_address
from central.gateway.keys import KeyStore
from central.gateway.ratelimit import FailureLimiter, RateLimiter
from central.gateway.timeouts import call_timeout
from central.infra.body_limit import read_body
from central.infra.http_client import ResilientClient, Unavailable
from common.api_docs import is_docs_path

log = structlog.get_logger("central.gateway")

# and the docs (is_docs_path); /metrics is the process's own (analytics has /metrics/...)
PUBLIC_PATHS = frozenset({"/livez", "/healthz", "/readyz", "/metrics", "/openapi.json"})
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
    }
)


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyStore,
        limiter: RateLimiter,
        remote: Mapping[str, tuple[str, str]],
        client: ResilientClient | None,
        internal_token: str = "",
        failures: FailureLimiter | None = None,
        trusted_proxies: tuple[Network, ...] = (),
    ) -> None:
        """``remote``: path prefix -> (service name, base URL) for services run separately."""
        self.app = app
        self.keys = keys
        self.limiter = limiter
        self.failures = failures
        self.trusted_proxies = trusted_proxies
        self.remote = dict(sorted(remote.items(), key=lambda kv: -len(kv[0])))
        self.client = client
        self.internal_token = internal_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = [
            (k, v) for k, v in scope["headers"] if k.decode("latin-1") not in IDENTITY_HEADERS
        ]
        request_id = _header(headers, b"x-request-id") or uuid.uuid4().hex
        if len(request_id) > 128:
            request_id = uuid.uuid4().hex
        path: str = scope["path"]
        status_holder = {"status": 500}
        key_id = ""

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                if path in PUBLIC_PATHS or is_docs_path(path):
                    await self.app({**scope, "headers": headers}, receive, send_wrapped)
                    return
                auth = _header(headers, b"authorization") or ""
                scheme, _, token = auth.partition(" ")
                token = token.strip() if scheme.lower() == "bearer" else ""
                client = self._client(scope, headers)
                principal = self.keys.cached(token) if token else None
                if principal is None:
                    # a lookup, or no key at all: an attempt that counts against the
                    # address, taken before the lookup so attempts in flight count too
                    blocked = await self.failures.take(client) if self.failures is not None else 0.0
                    if blocked > 0:
                        retry_after = str(max(1, math.ceil(blocked)))
                        log.warning("gateway.auth.throttled", client=client)
                        await _json(
                            send_wrapped,
                            429,
                            {"detail": f"too many failed authentications, retry after "
                             f"{retry_after} s"},
                            [(b"retry-after", retry_after.encode())],
                        )  # fmt: skip
                        return
                    principal = await self.keys.verify(token) if token else None
                    if principal is None:
                        log.info("gateway.auth.failed", client=client, key_given=bool(token))
                        await _json(
                            send_wrapped,
                            401,
                            {"detail": "missing or invalid API key"},
                            [(b"www-authenticate", b"Bearer")],
                        )
                        return
                    if self.failures is not None:
                        await self.failures.refund(client)
                key_id = principal.key_id
                wait = await self.limiter.check(principal.key_id, principal.scope)
                if wait > 0:
                    retry_after = str(max(1, math.ceil(wait)))
                    await _json(
                        send_wrapped,
                        429,
                        {"detail": f"rate limit exceeded, retry after {retry_after} s"},
                        [(b"retry-after", retry_after.encode())],
                    )
                    return
                headers = [h for h in headers if h[0] != b"authorization"]
                headers += [
                    (KEY_ID_HEADER.encode(), principal.key_id.encode()),
                    (SCOPE_HEADER.encode(), principal.scope.encode()),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
                if principal.site_id:
                    headers.append((SITE_HEADER.encode(), principal.site_id.encode()))
                if principal.user_id:
                    headers.append((USER_HEADER.encode(), principal.user_id.encode()))
                    headers.append(
                        (VEHICLES_HEADER.encode(), vehicles_header(principal.vehicles).encode())
                    )
                if self.internal_token:
                    headers.append((INTERNAL_HEADER.encode(), self.internal_token.encode()))
                target = self._route(path)
                if target is None:
                    await self.app({**scope, "headers": headers}, receive, send_wrapped)
                else:
                    await self._proxy(target, scope, headers, receive, send_wrapped)
            finally:
                log.info(
                    "gateway.access",
                    method=scope["method"],
                    path=path,
                    status=status_holder["status"],
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                    key_id=key_id or None,
                )

    def _client(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> str:
        peer = scope.get("client")
        forwarded = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
        return client_address(
            peer[0] if peer else None,
            ",".join(forwarded) if forwarded else None,
            self.trusted_proxies,
        )

    def _route(self, path: str) -> tuple[str, str] | None:
        for prefix, target in self.remote.items():
            if path == prefix or path.startswith(prefix + "/"):
                return target
        return None

    async def _proxy(
        self,
        target: tuple[str, str],
        scope: Scope,
        headers: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
    ) -> None:
        assert self.client is not None
        name, base = target
        body = await read_body(receive)
        if body is None:
            return
        query = scope.get("query_string", b"").decode("latin-1")
        url = base.rstrip("/") + scope["path"] + (f"?{query}" if query else "")
        out_headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in headers
            if k.decode("latin-1") not in HOP_BY_HOP or k == b"content-encoding"
        }
        try:
            response = await self.client.request(
                name,
                scope["method"],
                url,
                headers=out_headers,
                content=body,
                timeout_s=call_timeout(scope["method"], scope["path"], query, self.client.settings),
            )
        except Unavailable as err:
            retry_after = str(max(1, math.ceil(err.retry_after)))
            log.warning("gateway.service.unavailable", service=name, reason=err.reason)
            await _json(
                send,
                503,
                {"detail": f"the {name} service is unavailable, retry later"},
                [(b"retry-after", retry_after.encode())],
            )
            return
        response_headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.multi_items()
            if k.lower() not in HOP_BY_HOP and k.lower() != "x-request-id"
        ]
        content = response.content
        response_headers.append((b"content-length", str(len(content)).encode()))
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response_headers,
            }
        )
        await send({"type": "http.response.body", "body": content})


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


async def _json(
    send: Send, status: int, body: dict[str, object], extra: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
