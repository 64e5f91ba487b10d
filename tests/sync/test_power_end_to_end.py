"""Load management between a site and central, over real sockets: an operator's
temporary site limit at central reaches the site's load manager, the chargers of both
versions obey it, and central hears the limit in force back (``GET
/charging/sites/{id}/power``); a site without load management says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.polling import eventually
from tests.sync.conftest import SITE, SiteRig

POWER = {"site_limit_kw": 22, "failsafe_kw": 1.0, "cycle_seconds": 1}
LIMIT_PATH = f"/charging/sites/{SITE}/power/limit"


async def put_limit(site: SiteRig, body: dict[str, Any]) -> dict[str, Any]:
    operator = await site.central.auth("operator")
    async with site.central.client() as client:
        r = await client.put(LIMIT_PATH, params={"wait": 20}, json=body, headers=operator)
    assert r.status_code == 200, r.text  # the site answered in time
    answer: dict[str, Any] = r.json()
    return answer


async def central_power(site: SiteRig) -> dict[str, Any]:
    operator = await site.central.auth("operator")
    async with site.central.client() as client:
        r = await client.get(f"/charging/sites/{SITE}/power", headers=operator)
    assert r.status_code == 200, r.text
    power: dict[str, Any] = r.json()
    return power


@pytest.mark.parametrize("site_power", [POWER])
async def test_centrals_limit_is_obeyed_and_reported_back(site: SiteRig) -> None:
    chargers = [site.cp16, site.cp201]
    for cp in chargers:
        assert cp is not None
        await cp.plug_in(1)
        await cp.start(1, "TAG-OK")

    def limits() -> list[float]:
        return [cp.connectors[1].meter.limit_w or 0 for cp in chargers if cp is not None]

    async def obeyed(total_w: float) -> bool:
        now = limits()
        return sum(now) <= total_w and all(v > 0 for v in now)

    until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    answer = await put_limit(site, {"site_limit_kw": 9, "until": until.isoformat()})
    assert answer["status"] == "accepted", answer
    assert answer["result"]["site_limit_kw"] == 9
    await eventually(lambda: obeyed(9_000), "both chargers share 9 kW", within=20)

    async def reported(limit_kw: float, set_by: str) -> bool:
        limit = (await central_power(site))["limit"]
        return limit is not None and (limit["limit_kw"], limit["set_by"]) == (limit_kw, set_by)

    await eventually(lambda: reported(9, "central"), "central holds the limit", within=20)
    assert (await central_power(site))["limit"]["until"] == until.isoformat().replace("+00:00", "Z")

    back = await put_limit(site, {"site_limit_kw": None})
    assert (back["status"], back["result"]["site_limit_kw"]) == ("accepted", 22)
    await eventually(lambda: reported(22, "central"), "central holds 22 kW again", within=20)


async def test_a_site_without_load_management_rejects_centrals_limit(site: SiteRig) -> None:
    answer = await put_limit(site, {"site_limit_kw": 9})
    assert answer["status"] == "rejected"
    assert "load management is off" in answer["detail"]
    assert (await central_power(site))["limit"] is None
