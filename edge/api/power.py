"""Local HTTP API of load management: the site's power and a temporary site limit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import AwareDatetime, BaseModel, Field

from edge.power.document import power_document
from edge.power.manager import LoadManager


class SiteLimitBody(BaseModel):
    site_limit_kw: float = Field(gt=0, le=100_000)
    until: AwareDatetime | None = None  # unset: until it is removed


def power_router(manager: LoadManager) -> APIRouter:
    router = APIRouter(prefix="/api/power", tags=["power"])

    def enabled() -> None:
        if not manager.enabled:
            raise HTTPException(409, "load management is off: set power.site_limit_kw first")

    @router.get("")
    async def power() -> dict[str, Any]:
        return power_document(manager)

    @router.put("/limit")
    async def set_limit(body: SiteLimitBody) -> dict[str, Any]:
        """A temporary site limit, e.g. during a peak tariff: it may lower the configured
        limit, never raise it (that one is the connection's fuse)."""
        enabled()
        if body.until is not None and body.until <= manager.clock():
            raise HTTPException(422, "until is in the past")
        await manager.set_override(body.site_limit_kw, body.until, "local-api")
        return power_document(manager)

    @router.delete("/limit")
    async def clear_limit() -> dict[str, Any]:
        enabled()
        await manager.set_override(None, None, "local-api")
        return power_document(manager)

    return router
