"""The composition root of central: which services run in this process, and how.

Every service is listed in :data:`REGISTRY` by module path and built through the same
shape (:mod:`central.service`). :func:`create_app` builds one ASGI app for any mix:

* all-in-one (the default): the gateway plus every service in one process;
* one service alone (``--service parking``): its routes on its own port, no gateway;
  it trusts the identity headers the gateway adds (``internal_token`` when set);
* the gateway alone (``--service gateway``): keys, rate limits and a proxy to the
  services named in ``settings.service_urls`` (default ``http://127.0.0.1:<port>``).

Each service gets its own engine (its own database), migrated at start-up before the
service starts; the bus and the cache are shared by the services of the process.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from central.context import ServiceContext, utc_now
from central.infra.bus_url import make_bus
from central.infra.cache import make_cache
from central.infra.db import create_engine, migrate
from central.service import Service, ServiceBuilder
from central.settings import CentralSettings

log = structlog.get_logger("central.app")


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    prefixes: tuple[str, ...]


REGISTRY: tuple[ServiceSpec, ...] = (
    ServiceSpec("parking", "central.parking.service", ("/parking",)),
    ServiceSpec("charging", "central.charging.service", ("/charging",)),
    ServiceSpec("sync", "central.sync.service", ("/sync",)),
    ServiceSpec("notification", "central.notification.service", ("/notifications",)),
    ServiceSpec("analytics", "central.analytics.service", ("/analytics", "/metrics")),
)
SERVICE_NAMES = tuple(spec.name for spec in REGISTRY)


def spec_of(name: str) -> ServiceSpec:
    for spec in REGISTRY:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICE_NAMES)}")


def load_builder(spec: ServiceSpec) -> ServiceBuilder | None:
    """The service's ``build``, or None while its package is not there yet."""
    if importlib.util.find_spec(spec.module.rsplit(".", 1)[0]) is None:
        return None
    try:
        if importlib.util.find_spec(spec.module) is None:
            return None
    except ModuleNotFoundError:
        return None
    module = importlib.import_module(spec.module)
    return cast(ServiceBuilder, module.build)


def available_services() -> list[str]:
    return [spec.name for spec in REGISTRY if load_builder(spec) is not None]


def create_app(
    settings: CentralSettings,
    *,
    services: Sequence[str] | None = None,
    gateway: bool = True,
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:
    """``services``: the services to run in this process (default: all available, except
    those the gateway reaches at ``settings.service_urls``); an empty list with
    ``gateway=True`` is the gateway alone, proxying every service."""
    gateway_only = services is not None and len(services) == 0
    if services is None:
        services = [n for n in available_services() if n not in settings.service_urls]
    bus = make_bus(settings.bus_url, settings.bus_namespace)
    cache = make_cache(settings.cache_url, settings.cache_namespace)
    built: list[tuple[Service, AsyncEngine]] = []
    for name in services:
        builder = load_builder(spec_of(name))
        if builder is None:
            log.warning("central.service.missing", service=name)
            continue
        engine = create_engine(settings.database_url_for(name))
        ctx = ServiceContext(
            engine=engine, bus=bus, cache=cache, settings=settings, clock=clock, name=name
        )
        built.append((builder(ctx), engine))

    gateway_engine: AsyncEngine | None = None
    proxy_client: Any = None
    remote_services: Any = None
    if gateway:
        from central.gateway.keys import KeyStore
        from central.gateway.middleware import GatewayMiddleware
        from central.gateway.ratelimit import RateLimiter
        from central.gateway.remote import RemoteServices
        from central.infra.http_client import ResilientClient

        gateway_engine = create_engine(settings.database_url_for("gateway"))
        keys = KeyStore(gateway_engine, clock)
        local = {svc.name for svc, _ in built}
        remote: dict[str, tuple[str, str]] = {}
        for spec in REGISTRY:
            if spec.name in local:
                continue
            base = settings.service_urls.get(spec.name)
            if base is None and gateway_only:
                base = f"http://127.0.0.1:{settings.service_ports.get(spec.name, 0)}"
            if base is None:
                continue
            for prefix in spec.prefixes:
                remote[prefix] = (spec.name, base)
        proxy_client = ResilientClient(settings.resilience) if remote else None
        remote_services = (
            RemoteServices(proxy_client, {name: base for name, base in remote.values()})
            if proxy_client is not None
            else None
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(bus)
            stack.push_async_callback(cache.aclose)
            if gateway_engine is not None:
                stack.push_async_callback(gateway_engine.dispose)
                await migrate(gateway_engine, "gateway")
            if proxy_client is not None:
                stack.push_async_callback(proxy_client.aclose)
            for service, engine in built:
                stack.push_async_callback(engine.dispose)
                await migrate(engine, service.name)
            for service, _engine in built:
                await service.start()
                stack.push_async_callback(service.stop)
                log.info("central.service.started", service=service.name)
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
        docs_url=None if remote_services is not None else "/docs",
    )
    app.state.internal_token = "" if gateway else settings.internal_token
    app.state.settings = settings
    app.state.bus = bus
    app.state.cache = cache
    app.state.services = {svc.name: svc for svc, _ in built}
    for service, _engine in built:
        app.include_router(service.router())

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={"detail": _jsonable_errors(exc.errors())},
        )

    @app.get("/healthz", tags=["health"], summary="Liveness of this process and its services")
    async def healthz() -> dict[str, Any]:
        answer: dict[str, Any] = {
            "status": "ok",
            "services": sorted(svc.name for svc, _ in built),
        }
        if remote_services is not None:
            remote_states = await remote_services.health()
            answer["remote"] = remote_states
            if any(state != "up" for state in remote_states.values()):
                answer["status"] = "degraded"
        return answer

    if remote_services is not None:
        from fastapi.openapi.docs import get_swagger_ui_html
        from fastapi.responses import HTMLResponse

        @app.get("/openapi.json", include_in_schema=False)
        async def openapi_json() -> JSONResponse:
            merged = await remote_services.merged_openapi(app.openapi())
            return JSONResponse(merged)

        @app.get("/docs", include_in_schema=False)
        async def docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} - docs")

    from central.infra.body_limit import BodyLimitMiddleware
    from central.infra.gzip_body import GzipRequestMiddleware

    limit_for = settings.body_limits.for_path
    app.add_middleware(GzipRequestMiddleware, limit_for=limit_for)
    if not gateway:
        from central.infra.request_context import RequestContextMiddleware

        app.add_middleware(RequestContextMiddleware, service=",".join(services))
    if gateway:
        from central.gateway.clients import networks
        from central.gateway.ratelimit import FailureLimiter

        app.add_middleware(
            GatewayMiddleware,
            keys=keys,
            limiter=RateLimiter(settings.rate_limit),
            remote=remote,
            client=proxy_client,
            internal_token=settings.internal_token,
            failures=FailureLimiter(settings.rate_limit),
            trusted_proxies=networks(settings.trusted_proxies),
        )
    # outermost: a body over the route's limit is refused before anything reads it
    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    return app


def _jsonable_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for error in errors:
        item = {k: v for k, v in dict(error).items() if k in ("loc", "msg", "type")}
        item["loc"] = [str(part) for part in item.get("loc", ())]
        out.append(item)
    return out
