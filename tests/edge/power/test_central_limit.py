"""Central's ``set_site_limit`` on the running daemon: the load manager takes the limit
(set by central, kept and told to central as ``power.limit_changed``) and the chargers of
both versions are lowered to it; null goes back to the configured limit; a site without
load management, a late or a malformed command is rejected with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contract.events import PowerLimitChanged, parse_data
from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from sim.charger import SimCharger
from tests.edge.conftest import sim_charger_config
from tests.edge.site_commands import outbox, run_command
from tests.polling import eventually

CHARGERS = {"CP-16": "1.6", "CP-201": "2.0.1"}


@pytest.fixture
async def charging(
    config_factory: Callable[..., SiteConfig],
) -> AsyncIterator[tuple[EdgeDaemon, dict[str, SimCharger]]]:
    config = config_factory(
        chargers=[{"id": cid, "max_kw": 11} for cid in CHARGERS],
        power={"site_limit_kw": 22, "failsafe_kw": 1.0, "cycle_seconds": 1},
    )
    async with AsyncExitStack() as stack:
        edge = await stack.enter_async_context(EdgeDaemon(config))
        chargers = {}
        for cid, version in CHARGERS.items():
            sim = sim_charger_config(edge, cid, version, max_power_w=11_000.0)  # type: ignore[arg-type]
            chargers[cid] = await stack.enter_async_context(SimCharger(sim))
        async with asyncio.timeout(10):
            for cp in chargers.values():
                await cp.wait_online()
        for cp in chargers.values():
            await cp.plug_in(1)
            await cp.start(1, "TAG-OK")
        yield edge, chargers


def limits(chargers: dict[str, SimCharger]) -> list[float | None]:
    return [cp.connectors[1].meter.limit_w for cp in chargers.values()]


async def told(edge: EdgeDaemon) -> list[PowerLimitChanged]:
    return [
        parse_data(PowerLimitChanged, e)
        for e in await outbox(edge)
        if e.type == PowerLimitChanged.TYPE
    ]


async def test_centrals_limit_lowers_both_versions_until_it_is_removed(
    charging: tuple[EdgeDaemon, dict[str, SimCharger]],
) -> None:
    edge, chargers = charging

    async def full() -> bool:
        return all(v is not None and v > 9_000 for v in limits(chargers))

    await eventually(full, "each charger has its 11 kW of the 22", within=15)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    result = await run_command(
        edge, "set_site_limit", {"site_limit_kw": 9, "until": until.isoformat()}
    )
    assert (result.status, result.detail) == ("accepted", ""), result
    assert result.result["site_limit_kw"] == 9
    assert result.result["configured_kw"] == 22
    assert result.result["override"]["set_by"] == "central"

    async def lowered() -> bool:
        now = [v or 0 for v in limits(chargers)]
        return sum(now) <= 9_000 and all(v > 0 for v in now)

    await eventually(lowered, "both chargers share 9 kW", within=15)
    (changed,) = await told(edge)
    assert (changed.limit_kw, changed.set_by, changed.until) == (9, "central", until)

    back = await run_command(edge, "set_site_limit", {"site_limit_kw": None, "until": None})
    assert back.status == "accepted", back
    assert (back.result["site_limit_kw"], back.result["override"]) == (22, None)
    await eventually(full, "both back to 11 kW", within=15)
    assert [(c.limit_kw, c.until) for c in await told(edge)] == [(9, until), (22, None)]

    # above the configured fuse: accepted, and the fuse stays in force (and it says so)
    higher = await run_command(edge, "set_site_limit", {"site_limit_kw": 50, "until": None})
    assert (higher.status, higher.result["site_limit_kw"]) == ("accepted", 22)
    assert "configured 22 kW is lower" in higher.detail


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"site_limit_kw": 0, "until": None}, "site_limit_kw"),
        ({"site_limit_kw": -5}, "site_limit_kw"),
        ({"site_limit_kw": 1e9}, "site_limit_kw"),
        ({"site_limit_kw": "lots"}, "site_limit_kw"),
        ({}, "site_limit_kw"),
        ({"site_limit_kw": 5, "until": "tomorrow"}, "until"),
        ({"site_limit_kw": 5, "until": "2030-01-01T00:00:00"}, "until"),
        ({"site_limit_kw": 5, "until": "2020-01-01T00:00:00Z"}, "until has passed"),
        ({"site_limit_kw": None, "until": "2099-01-01T00:00:00Z"}, "until goes with"),
        ({"site_limit_kw": 5, "by": "me"}, "by"),
    ],
)
async def test_a_bad_or_late_limit_is_rejected_and_changes_nothing(
    config_factory: Callable[..., SiteConfig], payload: dict[str, Any], why: str
) -> None:
    config = config_factory(power={"site_limit_kw": 22, "cycle_seconds": 1})
    async with EdgeDaemon(config) as edge:
        result = await run_command(edge, "set_site_limit", payload)
        assert result.status == "rejected", result
        assert why in result.detail, result.detail
        assert edge.power.override is None
        assert await told(edge) == []


async def test_a_site_without_load_management_rejects_it(edge: EdgeDaemon) -> None:
    result = await run_command(edge, "set_site_limit", {"site_limit_kw": 5, "until": None})
    assert result.status == "rejected"
    assert result.detail == "load management is off at this site: power.site_limit_kw is not set"
    assert await told(edge) == []
