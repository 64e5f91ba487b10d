"""Central's ``set_site_limit`` command: a temporary site limit for load management
(null: back to the configured one), as a technician sets it with ``PUT /api/power/limit``.

Payload ``{"site_limit_kw": N | null, "until": RFC 3339 | null}`` (docs/power-central.md).
The result holds the limit in force afterwards: a limit above the configured one leaves
that one in force (it is the connection's fuse). :class:`BadLimit` where load management
is off or the payload is not one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from contract.sync_api import CommandStatus
from edge.power.manager import LoadManager

BY = "central"


class BadLimit(Exception):
    """The limit cannot be set; the message says why."""


class SiteLimitOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_limit_kw: float | None = Field(gt=0, le=100_000)
    until: AwareDatetime | None = None


def _order(payload: dict[str, Any], now: datetime) -> SiteLimitOrder:
    try:
        order = SiteLimitOrder.model_validate(payload)
    except ValidationError as err:
        error = err.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise BadLimit(f"set_site_limit: {where}: {error['msg']}") from err
    if order.until is not None and order.site_limit_kw is None:
        raise BadLimit("set_site_limit: until goes with a site_limit_kw, not with null")
    if order.until is not None and order.until <= now:
        raise BadLimit("set_site_limit: until has passed (the command arrived too late)")
    return order


async def set_site_limit(
    manager: LoadManager | None, payload: dict[str, Any], now: datetime
) -> tuple[CommandStatus, str, dict[str, Any]]:
    if manager is None or not manager.enabled:
        raise BadLimit("load management is off at this site: power.site_limit_kw is not set")
    order = _order(payload, now)
    await manager.set_override(order.site_limit_kw, order.until, BY)
    assert manager.power.site_limit_kw is not None
    in_force = manager.site_limit_w() / 1000
    override = None if manager.override is None else manager.override.document()
    result = {
        "site_limit_kw": in_force,
        "configured_kw": manager.power.site_limit_kw,
        "override": override,
    }
    detail = ""
    if order.site_limit_kw is not None and order.site_limit_kw > manager.power.site_limit_kw:
        detail = f"the configured {manager.power.site_limit_kw:g} kW is lower: it stays in force"
    return "accepted", detail, result
