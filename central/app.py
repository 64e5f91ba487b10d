"""The composition root of central: which services run in this process, and how.

Every service is listed in :data:`SERVICES` with its class (built through the same shape,
:mod:`central.service`) and the path prefixes of its routes. :func:`create_app` builds one
ASGI app for any mix:

* all-in-one (the default): the gateway plus every service in one process;
* one service alone (``--service parking``): its routes on its own port, no gateway;
  it trusts the identity headers the gateway adds (``internal_token`` when set);
* the gateway alone (``--service gateway``): keys, rate limits and a proxy to the
  services named in ``settings.service_urls`` (default ``http://127.0.0.1:<port>``).

Each service gets its own engine (its own database), migrated at start-up before the
service starts; the bus and the cache are shared by the services of the process.

The CLI (:mod:`central.cli`) imports this module only when a command runs, so
``evpark --help`` does not load the services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from central.analytics.service import AnalyticsService
from central.charging.service import ChargingService
from central.context import ServiceContext, utc_now
from central.gateway.clients import networks
from central.gateway.keys import KeyStore
from central.gateway.middleware import GatewayMiddleware
from central.gateway.ratelimit import FailureLimiter, RateLimiter
from central.gateway.remote import RemoteServices
from central.health import ProcessParts, health_router
from central.infra.body_limit import BodyLimitMiddleware
from central.infra.buckets import Buckets, make_buckets
from central.infra.bus_url import ManagedBus, make_bus
from central.infra.cache import make_cache
from central.infra.db import create_engine, migrate
from central.infra.gzip_body import GzipRequestMiddleware
from central.infra.http_client import ResilientClient
from central.infra.http_metrics import HttpMetricsMiddleware, RouteRecorder
from central.infra.metrics import CentralMetrics
from central.infra.request_context import RequestContextMiddleware
from central.notification.service import NotificationService
from central.parking.service import ParkingService
from central.process import remote_bases
from central.service import Service, ServiceBuilder
from central.settings import CentralSettings
from central.sync.service import SyncService
from common.api_docs import docs_router

log = structlog.get_logger("central.app")


@dataclass(frozen=True)
class ServiceEntry:
    build: ServiceBuilder
    prefixes: tuple[str, ...]  # the paths the gateway sends to the service


SERVICES: Final[Mapping[str, ServiceEntry]] = {
    "parking": ServiceEntry(ParkingService, ("/parking",)),
    "charging": ServiceEntry(ChargingService, ("/charging",)),
    "sync": ServiceEntry(SyncService, ("/sync",)),
    "notification": ServiceEntry(NotificationService, ("/notifications",)),
    "analytics": ServiceEntry(AnalyticsService, ("/analytics", "/metrics")),
}
SERVICE_NAMES: Final = tuple(SERVICES)


def entry_of(name: str) -> ServiceEntry:
    try:
        return SERVICES[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICE_NAMES)}") from None


@dataclass(frozen=True)
class Gateway:
    """The gateway's parts: its key store, and the services it reaches over HTTP."""

    engine: AsyncEngine
    keys: KeyStore
    remote: Mapping[str, tuple[str, str]]  # path prefix -> (service name, base URL)
    client: ResilientClient | None  # None: every service runs in this process
    remote_services: RemoteServices | None
    buckets: Buckets  # rate limits: shared through Redis, or this process's


def build_gateway(
    settings: CentralSettings,
    clock: Callable[[], datetime],
    local: set[str],
    *,
    gateway_only: bool,
) -> Gateway:
    """The gateway of a process running the services ``local``; the others are reached at
    ``settings.service_urls`` (alone, the gateway proxies every service, by default on its
    own port on this host)."""
    engine = create_engine(settings.database_url_for("gateway"), **settings.engine_options())
    bases = remote_bases(settings, sorted(local), SERVICE_NAMES, gateway_only=gateway_only)
    remote = {
        prefix: (name, base) for name, base in bases.items() for prefix in SERVICES[name].prefixes
    }
    client = ResilientClient(settings.resilience) if remote else None
    remote_services = (
        RemoteServices(client, {name: base for name, base in remote.values()})
        if client is not None
        else None
    )
    buckets = make_buckets(settings.cache_url, settings.cache_namespace)
    return Gateway(engine, KeyStore(engine, clock), remote, client, remote_services, buckets)


def create_app(
    settings: CentralSettings,
    *,
    services: Sequence[str] | None = None,
    gateway: bool = True,
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:
    """``services``: the services to run in this process (default: all, except those the
    gateway reaches at ``settings.service_urls``); an empty list with ``gateway=True`` is
    the gateway alone, proxying every service."""
    gateway_only = services is not None and len(services) == 0
    if services is None:
        services = [name for name in SERVICE_NAMES if name not in settings.service_urls]
    metrics = CentralMetrics()
    bus = make_bus(
        settings.bus_url,
        settings.bus_namespace,
        stream_replicas=settings.bus_stream_replicas,
        stream_max_age_s=settings.bus_stream_max_age_days * 86400,
        batch_size=settings.bus_batch_size,
        ack_wait_s=settings.bus_ack_wait_s,
        metrics=metrics,
    )
    cache = make_cache(settings.cache_url, settings.cache_namespace)
    built: list[tuple[Service, AsyncEngine]] = []
    for name in services:
        entry = entry_of(name)
        engine = create_engine(settings.database_url_for(name), **settings.engine_options())
        ctx = ServiceContext(
            engine=engine,
            bus=bus,
            cache=cache,
            settings=settings,
            clock=clock,
            name=name,
            metrics=metrics,
        )
        built.append((entry.build(ctx), engine))
    parts = (
        build_gateway(settings, clock, {svc.name for svc, _ in built}, gateway_only=gateway_only)
        if gateway
        else None
    )
    remote_services = parts.remote_services if parts is not None else None
    engines = {svc.name: engine for svc, engine in built}
    if parts is not None:
        engines = {"gateway": parts.engine, **engines}
    for owner, engine in engines.items():
        metrics.watch_pool(owner, engine)
    metrics.on_scrape("bus", _bus_lag(bus, metrics))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(bus)
            stack.push_async_callback(cache.aclose)
            if parts is not None:
                stack.push_async_callback(parts.engine.dispose)
                stack.push_async_callback(parts.buckets.aclose)
                await migrate(parts.engine, "gateway")
                if parts.client is not None:
                    stack.push_async_callback(parts.client.aclose)
            for service, engine in built:
                stack.push_async_callback(engine.dispose)
                await migrate(engine, service.name)
            for service, _engine in built:
                await service.start()
                stack.push_async_callback(service.stop)
                log.info("central.service.started", service=service.name)
            # first at exit: no handler may be cut off once the services stop and their
            # databases close
            stack.push_async_callback(bus.stop_delivery)
            yield
            log.info("central.stopping")

    title = "evpark central" if gateway else f"evpark central: {', '.join(services)}"
    app = FastAPI(
        title=title,
        version="1.0",
        description="Parking, charging, notifications and analytics for EV parking sites. "
        "Authenticate with `Authorization: Bearer <API key>`.",
        lifespan=lifespan,
        openapi_url=None if remote_services is not None else "/openapi.json",
        docs_url=None,  # served from the package (docs_router): no CDN needed
        redoc_url=None,
    )
    app.include_router(docs_router("/openapi.json", title))
    app.state.internal_token = "" if gateway else settings.internal_token
    app.state.settings = settings
    app.state.bus = bus
    app.state.cache = cache
    app.state.services = {svc.name: svc for svc, _ in built}
    app.state.metrics = metrics
    app.include_router(
        health_router(
            ProcessParts(engines, bus, remote_services, metrics, settings.metrics_token),
            [svc.name for svc, _ in built],
        )
    )
    for service, _engine in built:
        app.include_router(service.router())

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={"detail": _jsonable_errors(exc.errors())},
        )

    if remote_services is not None:
        # the services' own documents, merged: /docs shows the whole API at the gateway
        @app.get("/openapi.json", include_in_schema=False)
        async def openapi_json() -> JSONResponse:
            merged = await remote_services.merged_openapi(app.openapi())
            return JSONResponse(merged)

    limit_for = settings.body_limits.for_path
    app.add_middleware(RouteRecorder)  # innermost: sees the route the router took
    app.add_middleware(GzipRequestMiddleware, limit_for=limit_for)
    if parts is None:
        app.add_middleware(RequestContextMiddleware, service=",".join(services))
    else:
        app.add_middleware(
            GatewayMiddleware,
            keys=parts.keys,
            limiter=RateLimiter(settings.rate_limit, parts.buckets),
            remote=parts.remote,
            client=parts.client,
            internal_token=settings.internal_token,
            failures=FailureLimiter(settings.rate_limit, parts.buckets),
            trusted_proxies=networks(settings.trusted_proxies),
        )
    # a body over the route's limit is refused before anything reads it
    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    # outermost: every answer counted, the refusals above included
    app.add_middleware(
        HttpMetricsMiddleware,
        metrics=metrics,
        prefixes=tuple(p for entry in SERVICES.values() for p in entry.prefixes),
    )
    return app


def _bus_lag(bus: ManagedBus, metrics: CentralMetrics) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        for (topic, consumer), waiting in (await bus.pending()).items():
            metrics.bus_pending.labels(topic, consumer).set(waiting)

    return probe


def _jsonable_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for error in errors:
        item = {k: v for k, v in dict(error).items() if k in ("loc", "msg", "type")}
        item["loc"] = [str(part) for part in item.get("loc", ())]
        out.append(item)
    return out
