"""The demo's driver: set up as an operator and a driver app would, then visiting the site.

Before the site runs, central is given what a real installation is given: the demo site's
lot (its slots, so they can be reserved), its rates (``PUT /charging/rates/{site}``, so sessions are priced and revenue is booked), and
the demo driver's notification preferences with an email address (delivered to the demo's
mail sink, :mod:`evpark.mail_sink`) and a registered card. Then the driver comes back now
and then to its own bay (:data:`evpark.demo_site.DRIVER_SLOT`): it reserves the slot from
the app, arrives (the bay's sensor sees the car), plugs in, starts charging from the app,
charges for a while, stops from the app, unplugs and leaves. Each step is one short line
on the demo's output; what the driver is told arrives in the mail sink.

Everything goes through central's public API with the keys the demo made, so the demo
shows the journey a driver app drives, not a shortcut around it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
import structlog

from evpark.demo_site import DRIVER_CHARGER, DRIVER_SLOT, SITE_ID, lot_config
from sim.charger import SimCharger
from sim.sensors import SensorField

log = structlog.get_logger("evpark.demo")

DRIVER_ID: Final = "demo-driver"
DRIVER_EMAIL: Final = "demo-driver@evpark.example"
DRIVER_VEHICLES: Final = ("EV-1", "CAR-7")
DRIVER_VEHICLE: Final = "EV-1"  # the one that charges in the driver's visits
DRIVER_CARD: Final = "DEMO-TAG-1"  # the card the demo driver registered for EV-1
DRIVER_TIMEZONE: Final = "Europe/Berlin"
# the demo site's rates, as an operator sets them
DEMO_RATES: Final[Mapping[str, Any]] = {
    "currency": "EUR",
    "energy_price_per_kwh": "0.39",
    "parking_price_per_hour": "1.20",
    "idle_fee_per_minute": "0.10",
    "idle_grace_minutes": 15,
    "timezone": DRIVER_TIMEZONE,
}
# long enough for central to hear the site's answer, short enough to keep the demo moving
ANSWER_WAIT_S: Final = 30.0


class CentralRefused(RuntimeError):
    """Central answered a set-up request with an error; the message says which and why."""


@dataclass(frozen=True)
class DemoKeys:
    driver: str
    operator: str


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _call(
    client: httpx.AsyncClient, method: str, path: str, key: str, body: object = None
) -> httpx.Response:
    answer = await client.request(method, path, headers=_bearer(key), json=body)
    if answer.status_code >= 400:
        raise CentralRefused(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
    return answer


async def set_up_site_and_driver(
    client: httpx.AsyncClient, keys: DemoKeys, say: Callable[[str], None]
) -> None:
    """Rates for the demo site; the demo driver's preferences and card. A step central
    refuses is shown and the demo goes on without it (the rest still runs)."""
    steps = (
        (
            "the demo site's lot",
            _call(client, "PUT", f"/parking/lots/{SITE_ID}", keys.operator, lot_config()),
        ),
        (
            "the demo site's rates",
            _call(client, "PUT", f"/charging/rates/{SITE_ID}", keys.operator, DEMO_RATES),
        ),
        (
            "the demo driver's preferences",
            _call(
                client,
                "PUT",
                f"/notifications/users/{DRIVER_ID}/preferences",
                keys.driver,
                {
                    "locale": "en",
                    "timezone": DRIVER_TIMEZONE,
                    "vehicle_ids": list(DRIVER_VEHICLES),
                    "channels": {"email": {"enabled": True, "address": DRIVER_EMAIL}},
                },
            ),
        ),
        ("the demo driver's card", _register_card(client, keys)),
    )
    for what, step in steps:
        try:
            await step
        except CentralRefused as err:
            say(f"demo set-up: central refused {what}: {err}")


async def _register_card(client: httpx.AsyncClient, keys: DemoKeys) -> None:
    """The driver registers its card for its vehicle; where central lets only operators
    register cards, the operator does it for the driver."""
    path, body = f"/charging/id-tags/{DRIVER_CARD}", {"vehicle_id": DRIVER_VEHICLE}
    try:
        await _call(client, "PUT", path, keys.driver, body)
    except CentralRefused:
        await _call(client, "PUT", path, keys.operator, body)


async def revenue_line(client: httpx.AsyncClient, keys: DemoKeys) -> str:
    """The demo site's revenue so far, in one line."""
    answer = await _call(
        client, "GET", f"/analytics/revenue?site_id={SITE_ID}&granularity=day", keys.operator
    )
    sites = answer.json().get("sites", [])
    totals = [
        f"{c['currency']} {c['total']} from {c['sessions']} sessions ({c['energy_kwh']} kWh)"
        for site in sites
        for c in site.get("currencies", [])
    ]
    unpriced = sum(int(site.get("unpriced_sessions", 0)) for site in sites)
    return f"revenue of {SITE_ID}: {'; '.join(totals) or 'none'}; unpriced sessions: {unpriced}"


class DriverVisits:
    """The demo driver's visits to its bay, one after another, until cancelled.

    ``charge_s``: wall seconds of charging per visit; ``gap_s``: wall seconds between
    visits. A step that central refuses is shown and the visit goes on as a driver would
    (a start that did not begin is not stopped; the car still leaves).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        keys: DemoKeys,
        charger: SimCharger,
        sensors: SensorField,
        say: Callable[[str], None],
        *,
        charge_s: float = 10.0,
        gap_s: float = 120.0,
    ) -> None:
        self._client = client
        self._keys = keys
        self._charger = charger
        self._sensors = sensors
        self._say = say
        self._charge_s = charge_s
        self._gap_s = gap_s

    async def run(self) -> None:
        await self._charger.wait_online()
        while True:
            try:
                await self.visit()
            except (httpx.HTTPError, CentralRefused) as err:
                self._say(f"demo driver: {err}")
            await asyncio.sleep(self._gap_s)

    async def _app(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        answer = await _call(self._client, method, path, self._keys.driver, body)
        data: dict[str, Any] = answer.json()
        return data

    async def visit(self) -> None:
        reservation = await self._app(
            "POST",
            "/parking/reserve",
            {
                "site_id": SITE_ID,
                "slot_id": DRIVER_SLOT,
                "vehicle_id": DRIVER_VEHICLE,
                "duration_minutes": 30,
            },
        )
        self._say(f"demo driver: reserved slot {reservation['slot_id']} for {DRIVER_VEHICLE}")
        await self._sensors.arrive(DRIVER_SLOT)
        await self._charger.plug_in(1)
        self._say(f"demo driver: arrived at {DRIVER_SLOT} and plugged in at {DRIVER_CHARGER}")
        await self._charge()
        await self._charger.unplug(1)
        await self._sensors.leave(DRIVER_SLOT)
        with contextlib.suppress(CentralRefused):  # an arrival may have ended it already
            await self._app("DELETE", f"/parking/release?vehicle_id={DRIVER_VEHICLE}")
        self._say("demo driver: unplugged and left")

    async def _charge(self) -> None:
        started = await self._command(
            "/charging/start",
            {"site_id": SITE_ID, "charger_id": DRIVER_CHARGER, "vehicle_id": DRIVER_VEHICLE},
        )
        self._say(f"demo driver: start from the app: {_outcome(started)}")
        if not await self._charging_is(True):
            return
        await asyncio.sleep(self._charge_s)
        stopped = await self._command("/charging/stop", {"vehicle_id": DRIVER_VEHICLE})
        self._say(f"demo driver: stop from the app: {_outcome(stopped)}")
        if not await self._charging_is(False):  # the driver ends it at the charger
            await self._charger.stop(1, "Local")

    async def _charging_is(self, wanted: bool, within: float = 5.0) -> bool:
        """Wait a little for the charger's session to begin (or end): a command's answer
        may arrive just before the charger acts on it."""
        deadline = asyncio.get_running_loop().time() + within
        while (self._charger.transaction(1) is not None) != wanted:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            await self._charger.wait_change(1, left)
        return True

    async def _command(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Send a start or stop and wait for its outcome as an app would (long polls)."""
        answer = await self._app("POST", f"{path}?wait={ANSWER_WAIT_S:g}", body)
        if answer["status"] == "pending":
            answer = await self._app(
                "GET", f"/charging/commands/{answer['command_id']}?wait={ANSWER_WAIT_S:g}"
            )
        return answer


def _outcome(answer: Mapping[str, Any]) -> str:
    detail = answer.get("detail") or ""
    return f"{answer['status']}{f' ({detail})' if detail else ''}"
