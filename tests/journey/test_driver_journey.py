"""The driver's journey against running processes (issue 12): central (`evpark central
run`), an edge (`evpark edge run`), simulated chargers and sensors (over OCPP and the
local Mosquitto, as hardware talks), a real SMTP server and an HTTP receiver standing in
for the SMS and push providers.

Alice registers a card for her vehicle (the vehicle is hers by her key), reserves a slot,
arrives (the slot's sensor sees her car), starts charging from the app, charges, stops
from the app, is charged a price, leaves; she is told exactly that, on each of her three
channels: reserved, started, completed (with the energy and the cost), released. Bob
presents a card the site does not accept: the charger's start is refused, and Bob gets
one message, ``charging.failed``, and nothing else.

What each part does is the shared design of issue 12: the app token of a remote start,
events that name their subject, ``charging.failed`` at the site, notifications by driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sim.charger import SimCharger, SimChargerConfig
from sim.sensors import SensorField
from sim.sensors.sensor import Noise
from tests.central.notification_fixtures import (
    HttpReceiver,
    SmtpRecorder,
    http_receiver,
    smtp_server,
)
from tests.harness.ports import free_port
from tests.harness.processes import (
    DaemonProcess,
    ProcessFailed,
    central_run_command,
    create_key,
    edge_run_command,
    run_evpark,
    stop_all,
)
from tests.harness.site_config import write_site_toml
from tests.polling import eventually
from tests.services import require_tcp

__all__ = ["http_receiver", "smtp_server"]  # fixtures used by name

pytestmark = pytest.mark.timeout(300)

MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883
RATES = {
    "currency": "EUR",
    "energy_price_per_kwh": "0.40",
    "parking_price_per_hour": "0",
    "timezone": "Europe/Berlin",
}
ALICE = {"user": "alice", "vehicle": "EV-ALICE", "card": "ALICE-CARD-1"}
ALICE_EMAIL, ALICE_PHONE, ALICE_DEVICE = "alice@journey.example", "+4915112345678", "dev-alice"
BOB = {"user": "bob", "vehicle": "EV-BOB", "card": "BOB-CARD-9"}
BOB_EMAIL = "bob@journey.example"
ALICE_EVENTS = ("parking.reserved", "charging.started", "charging.completed", "parking.released")
CHANNELS = ("email", "sms", "push")
# seconds: a site's event reaches central within a few batches, a message within a poll
WITHIN = 30.0


@dataclass(frozen=True)
class Site:
    """The running processes and how to reach them."""

    site_id: str
    central: str  # central's base URL
    ocpp: str  # the edge's OCPP base URL
    operator: dict[str, str]  # Authorization headers
    alice: dict[str, str]
    bob: dict[str, str]


def _driver_key(user: str, vehicle: str, central_dir: Path) -> str:
    ran = run_evpark(
        "central", "keys", "create", "--scope", "driver", "--user", user,
        "--vehicle", vehicle, "--data-dir", str(central_dir),
    )  # fmt: skip
    if ran.code != 0:
        raise ProcessFailed(f"evpark central keys create failed: {ran.stderr[-400:]}")
    return ran.stdout.strip().splitlines()[-1]


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _site_file(path: Path, site_id: str, ports: dict[str, int], data_dir: Path) -> Path:
    slot = {"type": "ev", "evse": 1}
    return write_site_toml(
        path,
        {
            "site": {"id": site_id, "environment": "development"},
            "ocpp": {
                "host": "127.0.0.1",
                "port": ports["ocpp"],
                "auto_register": True,
                "remote_start_timeout": 20,
            },
            "http": {"host": "127.0.0.1", "port": ports["http"]},
            "central": {"url": f"http://127.0.0.1:{ports['central']}", "batch_interval": 0.3},
            "mqtt": {"url": f"mqtt://{MQTT_HOST}:{MQTT_PORT}"},
            "slot_timing": {"debounce": 0.5},
            "storage": {"data_dir": data_dir},
            "chargers": [{"id": "CP-ALICE"}, {"id": "CP-BOB"}],
            "slots": [
                {"id": "A1", "sensor": "S-A1", "charger": "CP-ALICE", **slot},
                {"id": "A2", "sensor": "S-A2", "charger": "CP-BOB", **slot},
            ],
        },
        comment="the driver's journey test",
    )


@pytest.fixture
def site(tmp_path: Path, smtp_server: SmtpRecorder, http_receiver: HttpReceiver) -> Iterator[Site]:
    """Central (its email, SMS and push pointed at the test's receivers) and an edge."""
    require_tcp("Mosquitto", MQTT_HOST, MQTT_PORT)
    site_id = f"journey-{uuid.uuid4().hex[:8]}"
    ports = {"central": free_port(), "ocpp": free_port(), "http": free_port()}
    central_dir = tmp_path / "central"
    central_env = {
        "EVPARK_CENTRAL_DATA_DIR": str(central_dir),
        "EVPARK_CENTRAL_RATE_LIMIT__ENABLED": "false",
        "EVPARK_CENTRAL_NOTIFICATION__SMTP__HOST": "127.0.0.1",
        "EVPARK_CENTRAL_NOTIFICATION__SMTP__PORT": str(smtp_server.port),
        "EVPARK_CENTRAL_NOTIFICATION__SMS__URL": http_receiver.url("/sms"),
        "EVPARK_CENTRAL_NOTIFICATION__PUSH__URL": http_receiver.url("/push"),
        "EVPARK_CENTRAL_NOTIFICATION__POLL_INTERVAL_S": "0.2",
    }
    keys = {
        "site": create_key("site", site_id, data_dir=central_dir),
        "operator": create_key("operator", data_dir=central_dir),
        "alice": _driver_key(ALICE["user"], ALICE["vehicle"], central_dir),
        "bob": _driver_key(BOB["user"], BOB["vehicle"], central_dir),
    }
    config = _site_file(tmp_path / "site.toml", site_id, ports, tmp_path / "edge")
    central = DaemonProcess(
        "central", central_run_command(ports["central"]), tmp_path / "central.log", central_env
    )
    edge = DaemonProcess(
        "edge",
        edge_run_command(config, tmp_path / "edge"),
        tmp_path / "edge.log",
        {"EVPARK_CENTRAL__SITE_KEY": keys["site"]},
    )
    try:
        central.start()
        central.wait_healthy(f"http://127.0.0.1:{ports['central']}/healthz")
        edge.start()
        edge.wait_healthy(f"http://127.0.0.1:{ports['http']}/healthz")
        yield Site(
            site_id=site_id,
            central=f"http://127.0.0.1:{ports['central']}",
            ocpp=f"ws://127.0.0.1:{ports['ocpp']}/ocpp",
            operator=_bearer(keys["operator"]),
            alice=_bearer(keys["alice"]),
            bob=_bearer(keys["bob"]),
        )
    finally:
        stop_all([edge, central], within=20)


def _charger(site: Site, charger_id: str) -> SimCharger:
    # step by step: no meter values of its own, no driver loop; 60 simulated s per second
    return SimCharger(
        SimChargerConfig(
            charger_id, url=site.ocpp, speed=60.0, meter_interval=5.0, auto_meter_values=False
        )
    )


def _sensors(site: Site) -> SensorField:
    # free slots at the start, no flapping: the test's arrival is one reading
    return SensorField(
        site.site_id,
        {"A1": "S-A1", "A2": "S-A2"},
        f"mqtt://{MQTT_HOST}:{MQTT_PORT}",
        noise=Noise(flap_probability=0.0, random_start=False),
    )


async def _ok(answer: httpx.Response, *codes: int) -> dict[str, Any]:
    assert answer.status_code in (codes or (200,)), f"{answer.request.url}: {answer.text}"
    body: dict[str, Any] = answer.json() if answer.content else {}
    return body


async def _command_outcome(
    api: httpx.AsyncClient, answer: dict[str, Any], who: dict[str, str]
) -> dict[str, Any]:
    """A start or stop's final answer, long-polling while it is pending."""
    for _ in range(3):
        if answer["status"] != "pending":
            return answer
        answer = await _ok(
            await api.get(f"/charging/commands/{answer['command_id']}?wait=20", headers=who),
            200,
            202,
        )
    return answer


async def _notifications(
    api: httpx.AsyncClient, user: str, who: dict[str, str]
) -> list[dict[str, Any]]:
    page = await _ok(await api.get(f"/notifications/users/{user}?limit=100", headers=who))
    items: list[dict[str, Any]] = page["items"]
    return items


async def _settled(
    api: httpx.AsyncClient, user: str, who: dict[str, str], count: int
) -> list[dict[str, Any]]:
    """The user's notifications once ``count`` are out of the queue (sent or dead), and a
    little longer, so a message too many shows too; what there is after ``WITHIN`` s
    otherwise (the caller's comparison then says what is missing)."""

    async def enough() -> bool:
        items = await _notifications(api, user, who)
        return sum(1 for n in items if n["status"] != "queued") >= count

    with contextlib.suppress(AssertionError):
        await eventually(enough, f"{count} notifications of {user} sent", WITHIN)
    await asyncio.sleep(2.0)
    return await _notifications(api, user, who)


@pytest.fixture
async def api(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=site.central, timeout=60) as client:
        yield client


async def _set_up(api: httpx.AsyncClient, site: Site) -> None:
    """The operator's lot and rates; Alice's card and preferences (hers to set); Bob's
    preferences with his card's tag (an operator's to set: a driver may not subscribe
    to a card's tag that could be a stranger's)."""
    lot = {
        "slots": [
            {"slot_id": "A1", "slot_type": "ev", "charger_id": "CP-ALICE"},
            {"slot_id": "A2", "slot_type": "ev", "charger_id": "CP-BOB"},
        ]
    }
    await _ok(await api.put(f"/parking/lots/{site.site_id}", json=lot, headers=site.operator))
    await _ok(await api.put(f"/charging/rates/{site.site_id}", json=RATES, headers=site.operator))
    await _ok(
        await api.put(
            f"/charging/id-tags/{ALICE['card']}",
            json={"vehicle_id": ALICE["vehicle"]},
            headers=site.alice,
        ),
        200,
        201,
    )
    alice_prefs = {
        "locale": "en",
        "timezone": "Europe/Berlin",
        "vehicle_ids": [ALICE["vehicle"]],
        "channels": {
            "email": {"address": ALICE_EMAIL},
            "sms": {"address": ALICE_PHONE},
            "push": {"address": ALICE_DEVICE},
        },
    }
    await _ok(
        await api.put(
            f"/notifications/users/{ALICE['user']}/preferences",
            json=alice_prefs,
            headers=site.alice,
        )
    )
    bob_prefs = {
        "vehicle_ids": [BOB["vehicle"]],
        "id_tags": [BOB["card"]],
        "channels": {"email": {"address": BOB_EMAIL}},
    }
    await _ok(
        await api.put(
            f"/notifications/users/{BOB['user']}/preferences", json=bob_prefs, headers=site.operator
        )
    )


async def _wait_slots_free(api: httpx.AsyncClient, site: Site) -> None:
    """Central knows the site's slots, none occupied, before anyone reserves."""

    async def free() -> bool:
        for slot in ("A1", "A2"):
            answer = await api.get(
                f"/parking/slots/{slot}?site_id={site.site_id}", headers=site.operator
            )
            if answer.status_code != 200 or answer.json()["state"] == "occupied":
                return False
        return True

    await eventually(free, f"central knows the slots of {site.site_id}, none occupied", WITHIN)


@pytest.mark.slow
async def test_a_drivers_journey_is_told_exactly_and_a_refused_card_only_fails(
    site: Site, api: httpx.AsyncClient, smtp_server: SmtpRecorder, http_receiver: HttpReceiver
) -> None:
    alice_cp, bob_cp, sensors = _charger(site, "CP-ALICE"), _charger(site, "CP-BOB"), _sensors(site)
    async with alice_cp, bob_cp, sensors:
        async with asyncio.timeout(WITHIN):
            await alice_cp.wait_online()
            await bob_cp.wait_online()
        await _set_up(api, site)
        await _wait_slots_free(api, site)

        # Alice reserves A1, arrives, plugs in and starts from the app
        reservation = await _ok(
            await api.post(
                "/parking/reserve",
                json={
                    "site_id": site.site_id,
                    "slot_id": "A1",
                    "vehicle_id": ALICE["vehicle"],
                    "duration_minutes": 30,
                },
                headers=site.alice,
            ),
            201,
        )
        assert reservation["slot_id"] == "A1"

        async def confirmed() -> bool:
            answer = await _ok(
                await api.get(f"/parking/reservations/{reservation['id']}", headers=site.alice)
            )
            assert answer["status"] in ("booked", "confirmed"), answer
            return answer["status"] == "confirmed"

        # she arrives once the site holds the slot (its charger reserved for her)
        await eventually(confirmed, "the site confirms Alice's reservation", WITHIN)
        await sensors.arrive("A1")

        async def in_use() -> bool:
            answer = await _ok(
                await api.get(f"/parking/reservations/{reservation['id']}", headers=site.alice)
            )
            return answer["status"] == "active"

        # central hears of her arrival: her reservation is in use
        await eventually(in_use, "central sees Alice's reservation in use", WITHIN)
        await alice_cp.plug_in(1)
        started = await _command_outcome(
            api,
            await _ok(
                await api.post(
                    "/charging/start?wait=30",
                    json={
                        "site_id": site.site_id,
                        "charger_id": "CP-ALICE",
                        "vehicle_id": ALICE["vehicle"],
                    },
                    headers=site.alice,
                ),
                200,
                202,
            ),
            site.alice,
        )
        # accepted only once the session began, with the session's id
        assert started["status"] == "accepted", started
        assert started["result"].get("session_id"), started
        tx = alice_cp.transaction(1)
        assert tx is not None, "the charger has no session although central said accepted"
        assert tx.id_tag.startswith("A"), tx.id_tag  # an app token: A + 19 characters
        assert len(tx.id_tag) == 20, tx.id_tag
        assert tx.id_tag not in (ALICE["vehicle"], ALICE["card"])

        # she charges (40 simulated minutes at 11 kW), then stops from the app
        await alice_cp.send_meter_values(1, n=8)
        stopped = await _command_outcome(
            api,
            await _ok(
                await api.post(
                    "/charging/stop?wait=30",
                    json={"vehicle_id": ALICE["vehicle"]},
                    headers=site.alice,
                ),
                200,
                202,
            ),
            site.alice,
        )
        assert stopped["status"] == "accepted", stopped
        async with asyncio.timeout(10):
            while alice_cp.transaction(1) is not None:
                await alice_cp.wait_change(1, 1.0)

        # she is charged a price: the session's cost from the site's rates
        history: dict[str, Any] = {}

        async def priced() -> bool:
            nonlocal history
            history = await _ok(
                await api.get(f"/charging/history/{ALICE['vehicle']}", headers=site.alice)
            )
            return bool(history["items"]) and history["items"][0]["cost"] is not None

        await eventually(priced, "Alice's session priced in her history", WITHIN)
        session = history["items"][0]
        total = Decimal(str(session["cost"]["total"]))
        assert session["cost"]["currency"] == "EUR"
        assert total > 0, session
        assert session["energy_wh"] > 0, session

        # she ends her reservation from the app while still parked, unplugs and leaves
        released = await _ok(
            await api.delete(f"/parking/release?vehicle_id={ALICE['vehicle']}", headers=site.alice)
        )
        assert released["status"] == "completed", released
        await alice_cp.unplug(1)
        await sensors.leave("A1")

        # Bob presents a card the site does not know; the charger starts, the site refuses
        await bob_cp.plug_in(1)
        await bob_cp.start(1, BOB["card"])

        # exactly the right messages, on the right channels
        alice_sent = await _settled(api, ALICE["user"], site.alice, len(ALICE_EVENTS) * 3)
        assert Counter((n["event_type"], n["channel"]) for n in alice_sent) == Counter(
            (event, channel) for event in ALICE_EVENTS for channel in CHANNELS
        ), [(n["event_type"], n["channel"], n["subject"]) for n in alice_sent]
        assert all(n["status"] == "sent" for n in alice_sent), alice_sent
        bob_sent = await _settled(api, BOB["user"], site.operator, 1)
        assert [(n["event_type"], n["channel"], n["status"]) for n in bob_sent] == [
            ("charging.failed", "email", "sent")
        ], [(n["event_type"], n["channel"], n["subject"]) for n in bob_sent]

    # ...and they reached the real transports
    alice_mail = [
        m
        for m, (_, to) in zip(smtp_server.messages, smtp_server.envelopes, strict=True)
        if ALICE_EMAIL in to
    ]
    bob_mail = [
        m
        for m, (_, to) in zip(smtp_server.messages, smtp_server.envelopes, strict=True)
        if BOB_EMAIL in to
    ]
    assert len(alice_mail) == len(ALICE_EVENTS), [m["subject"] for m in alice_mail]
    assert len(bob_mail) == 1, [m["subject"] for m in bob_mail]
    sms = [r for r in http_receiver.on("/sms") if r.body.get("to") == ALICE_PHONE]
    push = [r for r in http_receiver.on("/push") if json.dumps(r.body).find(ALICE_DEVICE) >= 0]
    assert len(sms) == len(ALICE_EVENTS), [r.body for r in sms]
    assert len(push) == len(ALICE_EVENTS), [r.body for r in push]

    # the completion names the energy and the cost; the failure says why in words
    completed = next(
        n for n in alice_sent if n["event_type"] == "charging.completed" and n["channel"] == "email"
    )
    assert "kWh" in completed["body"], completed["body"]
    assert f"{total.quantize(Decimal('0.01'))}" in completed["body"], (total, completed["body"])
    assert "EUR" in completed["body"] or "€" in completed["body"], completed["body"]
    reserved = next(
        n for n in alice_sent if n["event_type"] == "parking.reserved" and n["channel"] == "email"
    )
    assert "A1" in reserved["body"], reserved["body"]
    failed = bob_sent[0]
    assert "TokenRefused" not in failed["body"], failed["body"]  # words, not a code
    assert "{" not in failed["body"], failed["body"]
