"""The notification service end to end: events on the bus -> email received by a real
SMTP server, SMS and push received by a real HTTP server; retries, dead letters, dedup,
quiet hours; on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from structlog.testing import capture_logs

from central.app import create_app
from central.infra.bus_memory import MemoryBus
from central.notification.service import NotificationService
from central.notification.settings import (
    HttpProviderSettings,
    NotificationSettings,
    SmtpSettings,
)
from central.settings import CentralSettings
from contract.envelope import CloudEvent
from contract.events import ChargingCompleted, ChargingFailed, new_event
from tests.central.notification_fixtures import (
    FakeClock,
    HttpReceiver,
    SmtpRecorder,
    database_url,
    eventually,
    http_receiver,
    smtp_server,
)

__all__ = ["database_url", "http_receiver", "smtp_server"]  # fixtures used by name

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
OPERATOR = {"x-evpark-key-id": "op-1", "x-evpark-scope": "operator"}


@dataclass
class Running:
    client: httpx.AsyncClient
    service: NotificationService
    bus: MemoryBus
    clock: FakeClock


@asynccontextmanager
async def running(
    database_url: str,
    tmp_path: Path,
    smtp: SmtpRecorder,
    receiver: HttpReceiver,
    **overrides: Any,
) -> AsyncIterator[Running]:
    notification = NotificationSettings(
        smtp=SmtpSettings(host="127.0.0.1", port=smtp.port, sender="evpark <noreply@evpark.test>"),
        sms=HttpProviderSettings(url=receiver.url("/sms"), token="sms-secret"),
        push=HttpProviderSettings(url=receiver.url("/push"), token="push-secret"),
        **overrides,
    )
    settings = CentralSettings(
        data_dir=tmp_path, database_url=database_url, notification=notification
    )
    clock = FakeClock(NOW)
    app = create_app(settings, services=["notification"], gateway=False, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://central", headers=OPERATOR
        ) as client:
            yield Running(client, app.state.services["notification"], app.state.bus, clock)


def event(
    type_: str, data: dict[str, Any], *, at: datetime = NOW, event_id: str | None = None
) -> CloudEvent:
    return CloudEvent(
        id=event_id or f"ev-{type_}-{data.get('vehicle_id', data.get('id_tag'))}",
        source="/sites/site-a",
        type=type_,
        time=at,
        sequence=1,
        data=data,
    )


ALICE = {
    "locale": "en",
    "timezone": "Europe/Berlin",
    "vehicle_ids": ["EV-1"],
    "channels": {
        "email": {"address": "alice@example.com"},
        "sms": {"address": "+4915112345678"},
        "push": {"address": "push-token-alice"},
    },
}


def started(vehicle_id: str) -> dict[str, Any]:
    """A ``charging.started`` event's data for a vehicle."""
    return {
        "session_id": f"s-{vehicle_id}",
        "charger_id": "CP-1",
        "started_at": "2026-03-10T10:00:00Z",
        "vehicle_id": vehicle_id,
    }


COMPLETED = {
    "session_id": "s-1",
    "charger_id": "CP-1",
    "evse_id": 1,
    "id_tag": "TAG-1",
    "transaction_id": 7,
    "energy_wh": 18_500,
    "started_at": "2026-03-10T10:00:00Z",
    "stopped_at": "2026-03-10T11:45:00Z",
    "reason": "EVDisconnected",
    "inferred": False,
    "vehicle_id": "EV-1",
}


async def test_event_on_the_bus_reaches_email_sms_and_push_once(
    tmp_path: Path, smtp_server: SmtpRecorder, http_receiver: HttpReceiver
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'notification.db'}"
    async with running(url, tmp_path, smtp_server, http_receiver) as run:
        put = await run.client.put("/notifications/users/alice/preferences", json=ALICE)
        assert put.status_code == 200, put.text
        completed = event("charging.completed", COMPLETED)
        await run.bus.publish("charging.events", completed)
        await eventually(lambda: smtp_server.messages and len(http_receiver.requests) == 2)

        mail = smtp_server.messages[0]
        assert mail["To"] == "alice@example.com"
        assert mail["Subject"] == "Charging completed: 18.50 kWh"
        text = mail.get_content()
        assert "finished at 2026-03-10 12:45" in text  # 11:45 UTC in Berlin
        assert "1 h 45 min" in text
        sms = http_receiver.on("/sms")[0]
        assert sms.body["to"] == "+4915112345678"
        assert "18.50 kWh" in sms.body["text"]
        assert sms.headers["authorization"] == "Bearer sms-secret"
        push = http_receiver.on("/push")[0]
        assert push.body["token"] == "push-token-alice"
        assert push.body["data"]["event_id"] == completed.id
        assert push.headers["idempotency-key"] == push.body["reference"]

        # the same event again (a redelivery) and an event about nobody we know
        await run.bus.publish("charging.events", completed)
        await run.bus.publish("charging.events", event("charging.started", started("X")))
        await run.bus.idle()
        await run.service.process_due()

        async def statuses() -> list[tuple[str, str]]:
            listed = (await run.client.get("/notifications/users/alice")).json()["items"]
            return sorted((n["channel"], n["status"]) for n in listed)

        # a provider may have the message a moment before its sender notes it as sent
        sent = [("email", "sent"), ("push", "sent"), ("sms", "sent")]
        await eventually_async(lambda: _equals(statuses, sent))
        assert len(smtp_server.messages) == 1
        assert len(http_receiver.requests) == 2


async def test_an_event_that_breaks_its_contract_is_logged_and_dropped(
    tmp_path: Path, smtp_server: SmtpRecorder, http_receiver: HttpReceiver
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'notification.db'}"
    async with running(url, tmp_path, smtp_server, http_receiver) as run:
        put = await run.client.put("/notifications/users/alice/preferences", json=ALICE)
        assert put.status_code == 200, put.text
        broken = event("charging.completed", {**COMPLETED, "energy_wh": "a lot"})
        with capture_logs() as logs:
            await run.service.handle(broken)  # no error: redelivering it would not mend it
        assert [e["event"] for e in logs if e["log_level"] == "error"] == [
            "notification.event.invalid"
        ]
        await run.service.process_due()
        assert (await run.client.get("/notifications/users/alice")).json()["items"] == []
        assert not smtp_server.messages
        assert not http_receiver.requests


async def test_retries_with_backoff_then_dead_letter_then_manual_retry(
    database_url: str,
    tmp_path: Path,
    smtp_server: SmtpRecorder,
    http_receiver: HttpReceiver,
) -> None:
    url = database_url
    http_receiver.default_status = 503
    async with running(
        url,
        tmp_path,
        smtp_server,
        http_receiver,
        max_attempts=3,
        retry_base_s=60,
        retry_jitter=0,
        poll_interval_s=3600,
        breaker_failures=10,
    ) as run:
        prefs = {"vehicle_ids": ["EV-9"], "channels": {"sms": {"address": "+4915100000009"}}}
        assert (
            await run.client.put("/notifications/users/bob/preferences", json=prefs)
        ).status_code == 200
        released = event(
            "parking.released",
            {"vehicle_id": "EV-9", "slot_id": "S3", "reservation_id": "r-9", "reason": "x"},
        )
        await run.service.handle(released)
        await run.service.handle(released)  # redelivered: still one notification
        await eventually(lambda: len(http_receiver.requests) == 1)
        await eventually(lambda: run.service.breaker_modes()["sms"] == "closed")

        async def bob() -> dict[str, Any]:
            items = (await run.client.get("/notifications/users/bob")).json()["items"]
            assert len(items) == 1
            return dict(items[0])

        await eventually_async(lambda: _attempts_is(bob, 1))
        # not due before the backoff has passed
        run.clock.advance(timedelta(seconds=59))
        assert await run.service.process_due() == 0
        run.clock.advance(timedelta(seconds=1))
        assert await run.service.process_due() == 1  # 2nd attempt, next after 120 s
        run.clock.advance(timedelta(seconds=119))
        assert await run.service.process_due() == 0
        run.clock.advance(timedelta(seconds=1))
        assert await run.service.process_due() == 1  # 3rd and last attempt
        assert len(http_receiver.requests) == 3
        dead = await bob()
        assert dead["status"] == "dead"
        assert dead["attempts"] == 3
        assert "503" in dead["last_error"]
        letters = (await run.client.get("/notifications/dead-letters")).json()["items"]
        assert [n["id"] for n in letters] == [dead["id"]]
        run.clock.advance(timedelta(days=1))
        assert await run.service.process_due() == 0  # dead letters stay put

        # the provider is back; an operator retries the dead letter
        http_receiver.default_status = 202
        again = await run.client.post(f"/notifications/{dead['id']}/retry")
        assert again.status_code == 200
        await eventually_async(lambda: _status_is(bob, "sent"))
        assert len(http_receiver.requests) == 4
        assert (await run.client.post(f"/notifications/{dead['id']}/retry")).status_code == 409
        status = (await run.client.get("/notifications/status")).json()
        assert status["queue"] == {"pending": 0, "dead": 0}
        assert status["channels"] == {"email": "closed", "sms": "closed", "push": "closed"}


async def _equals(read: Any, expected: Any) -> bool:
    return bool(await read() == expected)


async def _attempts_is(read: Any, attempts: int) -> bool:
    return bool((await read())["attempts"] == attempts)


async def _status_is(read: Any, status: str) -> bool:
    return bool((await read())["status"] == status)


async def eventually_async(condition: Any, within: float = 10.0) -> None:
    import asyncio

    async with asyncio.timeout(within):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.02)


async def test_permanent_failures_dead_letter_at_once_and_transient_smtp_retries(
    tmp_path: Path, smtp_server: SmtpRecorder, http_receiver: HttpReceiver
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'notification.db'}"
    async with running(
        url,
        tmp_path,
        smtp_server,
        http_receiver,
        retry_base_s=30,
        retry_jitter=0,
        poll_interval_s=3600,
    ) as run:
        for user, address in (("carol", "carol@bounce.example"), ("dave", "dave@flaky.example")):
            prefs = {"vehicle_ids": [f"EV-{user}"], "channels": {"email": {"address": address}}}
            await run.client.put(f"/notifications/users/{user}/preferences", json=prefs)
            await run.service.handle(event("charging.started", started(f"EV-{user}")))
        await run.service.process_due()

        async def one(user: str) -> dict[str, Any]:
            items = (await run.client.get(f"/notifications/users/{user}")).json()
            return dict(items["items"][0])

        await eventually_async(lambda: _status_is(lambda: one("carol"), "dead"))
        assert "550" in (await one("carol"))["last_error"]
        await eventually_async(lambda: _attempts_is(lambda: one("dave"), 1))
        assert (await one("dave"))["status"] == "queued"
        run.clock.advance(timedelta(seconds=30))
        await run.service.process_due()
        assert (await one("dave"))["status"] == "sent"
        assert [env[1] for env in smtp_server.envelopes] == [["dave@flaky.example"]]


async def test_quiet_hours_delay_until_their_end_but_not_urgent_events(
    tmp_path: Path, smtp_server: SmtpRecorder, http_receiver: HttpReceiver
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'notification.db'}"
    async with running(url, tmp_path, smtp_server, http_receiver, poll_interval_s=3600) as run:
        prefs = {
            "timezone": "Europe/Berlin",
            "vehicle_ids": ["EV-Q"],
            "channels": {"push": {"address": "tok-q"}},
            "quiet_hours": {"start": "12:00", "end": "14:30"},  # NOW is 13:00 in Berlin
        }
        assert (
            await run.client.put("/notifications/users/quinn/preferences", json=prefs)
        ).status_code == 200
        await run.service.handle(event("charging.started", started("EV-Q")))
        await run.service.handle(
            event("charging.failed", {"charger_id": "CP-1", "vehicle_id": "EV-Q", "reason": "x"})
        )
        await eventually(lambda: len(http_receiver.requests) == 1)
        assert http_receiver.requests[0].body["title"] == "Charging failed"

        async def failed_sent() -> bool:
            listed = (await run.client.get("/notifications/users/quinn")).json()["items"]
            return any(
                n["event_type"] == "charging.failed" and n["status"] == "sent" for n in listed
            )

        # the worker records the send after the provider answered: wait for that before
        # moving the clock, or the send still in hand looks due again
        await eventually_async(failed_sent)
        run.clock.advance(timedelta(minutes=89))
        assert await run.service.process_due() == 0
        run.clock.advance(timedelta(minutes=1))  # 14:30 Berlin
        assert await run.service.process_due() == 1
        assert http_receiver.requests[1].body["title"] == "Charging started"


async def test_preferences_and_templates_api(
    tmp_path: Path, smtp_server: SmtpRecorder, http_receiver: HttpReceiver
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'notification.db'}"
    async with running(url, tmp_path, smtp_server, http_receiver) as run:
        c = run.client
        assert (await c.get("/notifications/users/erin/preferences")).status_code == 404
        bad = [
            {"channels": {"email": {"address": "not-an-email"}}},
            {"channels": {"sms": {"address": "0151 123"}}},
            {"channels": {"sms": {"enabled": True}}},
            {"timezone": "Mars/Olympus"},
            {"events": ["parking.occupied"]},
            {"quiet_hours": {"start": "22:00", "end": "22:00"}},
            {"locale": "german"},
            {"unknown": 1},
        ]
        for body in bad:
            answer = await c.put("/notifications/users/erin/preferences", json=body)
            assert answer.status_code == 422, body
        good = {
            "locale": "de",
            "vehicle_ids": ["EV-E"],
            "id_tags": ["TAG-E"],
            "events": ["parking.reserved"],
            "channels": {"email": {"address": "erin@example.com"}},
        }
        assert (await c.put("/notifications/users/erin/preferences", json=good)).status_code == 200
        read = (await c.get("/notifications/users/erin/preferences")).json()
        assert read["events"] == ["parking.reserved"]
        assert read["id_tags"] == ["TAG-E"]
        assert read["channels"] == {"email": {"enabled": True, "address": "erin@example.com"}}

        path = "/notifications/templates/parking.reserved/email/de"
        unknown = await c.put(path, json={"subject": "Hallo $password", "body": "x"})
        assert unknown.status_code == 422
        assert "password" in unknown.text
        assert (
            await c.put("/notifications/templates/parking.occupied/email/de", json={"body": "x"})
        ).status_code == 422
        custom = {
            "subject": "Platz $slot_id",
            "body": "Fahrzeug $vehicle_id: $slot_id ab $starts_at",
        }
        assert (await c.put(path, json=custom)).status_code == 200
        await run.service.handle(
            event(
                "parking.reserved",
                {
                    "vehicle_id": "EV-E",
                    "slot_id": "B7",
                    "reservation_id": "r-e",
                    "starts_at": "2026-03-10T17:00:00Z",
                },
            )
        )
        await eventually(lambda: bool(smtp_server.messages))
        assert smtp_server.messages[0]["Subject"] == "Platz B7"
        # times read in the user's zone, with its abbreviation
        assert (
            smtp_server.messages[0].get_content().strip()
            == "Fahrzeug EV-E: B7 ab 2026-03-10 17:00 UTC"
        )

        driver = {"x-evpark-key-id": "d-1", "x-evpark-scope": "driver"}
        assert (await c.get("/notifications/templates", headers=driver)).status_code == 403
        assert (await c.delete(path)).status_code == 204
        assert (await c.delete(path)).status_code == 404
        assert (await c.delete("/notifications/users/erin/preferences")).status_code == 204
        assert (await c.get("/notifications/users/erin/preferences")).status_code == 404


async def test_a_drivers_charge_reaches_that_driver_with_its_cost_and_nobody_else(
    tmp_path: Path, smtp_server: SmtpRecorder, http_receiver: HttpReceiver
) -> None:
    """Version 2 events as the edge sends them: the driver named is told, on every
    channel, with the cost priced from the event's rate; a previous owner of the car is not."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'notification.db'}"
    async with running(url, tmp_path, smtp_server, http_receiver) as run:
        alice = {**ALICE, "vehicle_ids": []}  # told as the driver, whatever she listed
        bob = {**ALICE, "vehicle_ids": ["EV-1"], "channels": {"email": {"address": "bob@x.org"}}}
        for user_id, prefs in (("alice", alice), ("bob", bob)):
            put = await run.client.put(f"/notifications/users/{user_id}/preferences", json=prefs)
            assert put.status_code == 200, put.text
        subject = {"vehicle_id": "EV-1", "driver_id": "alice", "id_tag": "AQ7K2M4P9X3B5N8R6T2W"}
        rate = {"currency": "EUR", "energy_price_per_kwh": "0.40", "timezone": "Europe/Berlin"}
        data = ChargingCompleted.model_validate({**COMPLETED, **subject, "rate": rate})
        done = new_event(data, site_id="site-a", time=NOW, sequence=1)
        failed = new_event(
            ChargingFailed(charger_id="CP-2", code="TokenRefused", **subject),
            site_id="site-a",
            time=NOW,
            sequence=2,
        )
        await run.bus.publish("charging.events", done)
        await run.bus.publish("charging.events", failed)
        await eventually(
            lambda: len(smtp_server.messages) == 2 and len(http_receiver.requests) == 4
        )
        assert {tuple(rcpt) for _sender, rcpt in smtp_server.envelopes} == {("alice@example.com",)}
        mails = {m["Subject"]: m.get_content() for m in smtp_server.messages}
        assert "Cost: 7.40 EUR." in mails["Charging completed: 18.50 kWh"]
        assert "your card or app authorization was refused" in mails["Charging failed"]
        texts = [r.body["text"] for r in http_receiver.on("/sms")]
        assert any("Cost: 7.40 EUR." in text for text in texts)
        await run.bus.idle()
        assert (await run.client.get("/notifications/users/bob")).json()["items"] == []
