"""Every HTTP request counted and timed by its route template (``/parking/slots/{slot_id}``,
never the raw path: a label per slot id would grow without bound).

Two pieces: :class:`HttpMetricsMiddleware` is the outermost middleware, so an answer the
gateway gives itself (401, 429, a proxied service's) is counted like one from a route;
:class:`RouteRecorder` is the innermost, where the router has put the matched route in
the scope, and hands its template out through a holder the outer one put there (the
layers between copy the scope, the holder is shared). A request no route took is
labelled with its service's path prefix (``/parking/*``) when it has one, else
``unmatched``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.infra.metrics import CentralMetrics

UNMATCHED = "unmatched"
_HOLDER = "evpark.route_template"


@dataclass
class _Template:
    path: str | None = None


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: CentralMetrics, prefixes: tuple[str, ...]) -> None:
        """``prefixes``: the services' path prefixes (for requests no route took)."""
        self.app = app
        self.metrics = metrics
        self.prefixes = tuple(sorted(prefixes, key=len, reverse=True))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}  # an exception escaping: what the server will answer
        template = _Template()

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app({**scope, _HOLDER: template}, receive, send_counted)
        finally:
            route = template.path or self._prefix_of(scope["path"])
            method = scope["method"]
            self.metrics.http_requests.labels(route, method, str(status["code"])).inc()
            self.metrics.http_seconds.labels(route, method).observe(time.perf_counter() - started)

    def _prefix_of(self, path: str) -> str:
        for prefix in self.prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return prefix + "/*"
        return UNMATCHED


class RouteRecorder:
    """The innermost middleware: tells :class:`HttpMetricsMiddleware` the route taken."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            holder = scope.get(_HOLDER)
            route = scope.get("route")
            if isinstance(holder, _Template) and route is not None:
                holder.path = getattr(route, "path", None)
