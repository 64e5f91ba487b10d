"""The process's own endpoints for its operators, on every central process (gateway, a
service alone, all-in-one), public like the docs (no API key):

* ``/healthz``: liveness. 200 while the process answers; the gateway adds its services'.
* ``/readyz``: readiness. 200 when the databases of this process answer ``SELECT 1`` and
  the bus can deliver (and, for a gateway, the services it routes to are ready); else
  503 with what failed, so a load balancer sends no traffic to it.
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
    if parts.remote is not None:
        for name, state in (await parts.remote.states("/readyz")).items():
            checks[f"service:{name}"] = "ok" if state == "up" else state
    return checks


def health_router(parts: ProcessParts, local_services: list[str]) -> APIRouter:
    router = APIRouter(tags=["health"])

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
        summary="Readiness: this process's databases and bus (and a gateway's services)",
        responses={503: {"description": "not ready; the body names what failed"}},
    )
    async def readyz() -> JSONResponse:
        checks = await readiness(parts)
        failed = sorted(name for name, state in checks.items() if state != "ok")
        return JSONResponse(
            {"status": "not ready" if failed else "ready", "checks": checks, "failed": failed},
            status_code=503 if failed else 200,
        )

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
