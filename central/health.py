"""The process's own endpoints for its operators, on every central process (gateway, a
service alone, all-in-one), public like the docs (no API key):

* ``/livez``: liveness. 200 while the process answers; it asks nothing else, so a slow
  database or service never gets a process restarted.
* ``/healthz``: 200 while the process answers; a gateway adds its services' (for people).
* ``/readyz``: readiness. 200 when the databases of this process answer ``SELECT 1`` and
  the bus can deliver; else 503 with what failed, so a load balancer sends no traffic to
  it. A gateway also reports the readiness of the services it routes to, without failing
  for them: one service down must not take the whole API (every gateway) out of the load
  balancer; the gateway answers 503 for that service's routes alone.
* ``/metrics``: Prometheus text (:mod:`central.infra.metrics`); with ``metrics_token`` set,
  only for ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from central.gateway.remote import RemoteServices
from central.infra.bus_url import ManagedBus
from central.infra.metrics import CentralMetrics

CHECK_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ProcessParts:
    """What this process's readiness depends on."""

    engines: Mapping[str, AsyncEngine]  # owner (a service, or the gateway) -> its database
    bus: ManagedBus
    remote: RemoteServices | None
    metrics: CentralMetrics
    metrics_token: str = ""


async def database_problem(engine: AsyncEngine) -> str | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:g} s"
    except (SQLAlchemyError, OSError) as err:
        return f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    return None


async def readiness(parts: ProcessParts) -> dict[str, str]:
    """Check name -> ``ok`` or what is wrong."""
    checks: dict[str, str] = {}
    owners = list(parts.engines)
    problems = await asyncio.gather(*(database_problem(parts.engines[o]) for o in owners))
    for owner, problem in zip(owners, problems, strict=True):
        checks[f"database:{owner}"] = problem or "ok"
    checks["bus"] = parts.bus.problem() or "ok"
    return checks


async def services_readiness(parts: ProcessParts) -> dict[str, str]:
    """A gateway's view of the services it routes to: name -> ``ok`` or what is wrong."""
    if parts.remote is None:
        return {}
    states = await parts.remote.states("/readyz")
    return {name: "ok" if state == "up" else state for name, state in states.items()}


def health_router(parts: ProcessParts, local_services: list[str]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/livez", summary="Liveness: this process answers (nothing else is asked)")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/healthz", summary="Liveness of this process and its services")
    async def healthz() -> dict[str, Any]:
        answer: dict[str, Any] = {"status": "ok", "services": sorted(local_services)}
        if parts.remote is not None:
            remote_states = await parts.remote.health()
            answer["remote"] = remote_states
            if any(state != "up" for state in remote_states.values()):
                answer["status"] = "degraded"
        return answer

    @router.get(
        "/readyz",
        summary="Readiness: this process's databases and bus (a gateway's services reported)",
        responses={503: {"description": "not ready; the body names what failed"}},
    )
    async def readyz() -> JSONResponse:
        checks, services = await asyncio.gather(readiness(parts), services_readiness(parts))
        failed = sorted(name for name, state in checks.items() if state != "ok")
        answer: dict[str, Any] = {
            "status": "not ready" if failed else "ready",
            "checks": checks,
            "failed": failed,
        }
        if parts.remote is not None:
            answer["services"] = services
        return JSONResponse(answer, status_code=503 if failed else 200)

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if parts.metrics_token and not _bearer_is(request, parts.metrics_token):
            return JSONResponse(
                {"detail": "metrics need the metrics token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Response(await parts.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


def _bearer_is(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)
