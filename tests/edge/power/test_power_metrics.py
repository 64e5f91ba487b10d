"""Load management's gauges on ``/metrics`` after decisions of the running daemon, with a
charger of each OCPP version charging: the limits, what is offered and measured, the
sessions by state, each limit's usage; and the temporary limit at once."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from sim.charger import SimCharger
from tests.edge.conftest import sim_charger_config
from tests.edge.power.charging import start_charging
from tests.polling import eventually

CHARGERS = {"CP-A": "1.6", "CP-B": "2.0.1"}


def gauges(text: str) -> dict[str, float]:
    """``evpark_power_*`` samples by name with their labels, e.g. ``evpark_power_sessions{
    state="charging"}``."""
    found = re.findall(r"^(evpark_power_[^ {]+(?:\{[^}]*\})?) (\S+)$", text, re.M)
    return {name: float(value) for name, value in found}


async def test_the_gauges_follow_each_decision(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(
        chargers=[{"id": cid, "max_kw": 22} for cid in CHARGERS],
        power={"site_limit_kw": 20, "min_session_kw": 1.4, "failsafe_kw": 1.0,
               "cycle_seconds": 1, "phase_limit_a": 32},
    )  # fmt: skip
    async with AsyncExitStack() as stack:
        edge = await stack.enter_async_context(EdgeDaemon(config))
        api = await stack.enter_async_context(
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.http_port}", timeout=10)
        )
        chargers = []
        for cid, version in CHARGERS.items():
            sim = sim_charger_config(edge, cid, version)  # type: ignore[arg-type]
            chargers.append(await stack.enter_async_context(SimCharger(sim)))
        await start_charging(chargers)
        now: dict[str, float] = {}

        async def both_charging() -> bool:
            now.update(gauges((await api.get("/metrics")).text))
            return now.get('evpark_power_sessions{state="charging"}') == 2

        await eventually(both_charging, "two sessions charging in the gauges", within=15)
        assert now["evpark_power_site_limit_watts"] == 20_000
        assert now["evpark_power_configured_limit_watts"] == 20_000
        assert 18_000 < now["evpark_power_offered_watts"] <= 20_000
        assert now['evpark_power_sessions{state="queued"}'] == 0
        assert now["evpark_power_uncontrolled_chargers"] == 0
        assert 0.9 < now['evpark_power_limit_usage_ratio{limit="site"}'] <= 1.0
        assert now['evpark_power_limit_usage_ratio{limit="phase L1"}'] > 0
        assert (
            'evpark_ocpp_commands_total{action="SetChargingProfile",outcome="Accepted"}'
            in (await api.get("/metrics")).text
        )

        for cp in chargers:
            await cp.send_meter_values(1)

        async def measured() -> bool:
            now.update(gauges((await api.get("/metrics")).text))
            return now["evpark_power_measured_watts"] > 0

        await eventually(measured, "the sessions' measured power in the gauges")
        drawn = sum(cp.connectors[1].meter.power_w for cp in chargers)
        assert now["evpark_power_measured_watts"] == drawn

        reply = await api.put("/api/power/limit", json={"site_limit_kw": 5})
        assert reply.status_code == 200, reply.text
        now.update(gauges((await api.get("/metrics")).text))  # set at once, not next cycle
        assert now["evpark_power_site_limit_watts"] == 5_000
        assert now["evpark_power_configured_limit_watts"] == 20_000
