"""All of central in one process: an edge's events through the sync API and the bus
reach the driver as an email and an SMS, and show in the analytics figures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from central.notification.settings import HttpProviderSettings, NotificationSettings, SmtpSettings
from tests.central.conftest import FakeClock, cloud_event
from tests.central.notification_fixtures import (
    HttpReceiver,
    SmtpRecorder,
    eventually,
    http_receiver,
    smtp_server,
)

__all__ = ["http_receiver", "smtp_server"]  # fixtures used by name


async def test_edge_events_notify_the_driver_and_count_in_analytics(
    central_factory: Callable[..., Any],
    clock: FakeClock,
    smtp_server: SmtpRecorder,
    http_receiver: HttpReceiver,
) -> None:
    notification = NotificationSettings(
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_server.port),
        sms=HttpProviderSettings(url=http_receiver.url("/sms")),
    )
    async with central_factory(notification=notification) as c:
        driver, operator = await c.auth("driver", user="fleet-7"), await c.auth("operator")
        site = await c.auth("site", "north")
        prefs = {
            "id_tags": ["TAG-7"],
            "channels": {
                "email": {"address": "fleet@example.com"},
                "sms": {"address": "+491701234567"},
            },
            "events": ["charging.completed"],
        }
        # a driver may not subscribe to a card's tag (it could be a stranger's): operators do
        answer = await c.client.put(
            "/notifications/users/fleet-7/preferences", json=prefs, headers=driver
        )
        assert answer.status_code == 403, answer.text
        answer = await c.client.put(
            "/notifications/users/fleet-7/preferences", json=prefs, headers=operator
        )
        assert answer.status_code == 200, answer.text

        start = clock() - timedelta(hours=2)
        stop = start + timedelta(hours=1)
        rate = {"currency": "EUR", "energy_price_per_kwh": "0.40", "timezone": "UTC"}
        events = [
            cloud_event(
                "north",
                1,
                "charging.started",
                {
                    "session_id": "n1",
                    "charger_id": "CP-1",
                    "evse_id": 1,
                    "connector_id": 1,
                    "id_tag": "TAG-7",
                    "transaction_id": 1,
                    "meter_start_wh": 0,
                    "started_at": start.isoformat(),
                    "vehicle_type": "van",
                },
                time=start,
            ),
            cloud_event(
                "north",
                2,
                "charging.completed",
                {
                    "session_id": "n1",
                    "charger_id": "CP-1",
                    "evse_id": 1,
                    "id_tag": "TAG-7",
                    "transaction_id": 1,
                    "energy_wh": 25_000,
                    "started_at": start.isoformat(),
                    "stopped_at": stop.isoformat(),
                    "reason": "EVDisconnected",
                    "inferred": False,
                    "rate": rate,
                },
                time=stop,
            ),
        ]
        sent = await c.client.post("/sync/v1/events", json={"events": events}, headers=site)
        assert sent.status_code == 200, sent.text
        again = await c.client.post("/sync/v1/events", json={"events": events}, headers=site)
        assert again.status_code == 200, again.text
        await c.settle()

        await eventually(lambda: bool(smtp_server.messages) and bool(http_receiver.requests))
        await c.settle()
        mail = smtp_server.messages[0]
        assert mail["To"] == "fleet@example.com"
        assert mail["Subject"] == "Charging completed: 25.00 kWh"
        assert http_receiver.requests[0].body["to"] == "+491701234567"

        params = {"site_id": "north", "granularity": "total"}
        usage = await c.client.get("/analytics/usage", params=params, headers=operator)
        assert usage.status_code == 200, usage.text
        totals = usage.json()["sites"][0]["totals"]
        assert totals["sessions"]["completed"] == 1
        assert totals["energy_kwh"] == 25.0
        revenue = await c.client.get("/analytics/revenue", params=params, headers=operator)
        (eur,) = revenue.json()["sites"][0]["currencies"]
        assert eur["total"] == "10.00"
        types = await c.client.get("/analytics/vehicle-types", headers=operator)
        assert [t["vehicle_type"] for t in types.json()["types"]] == ["van"]
        mine = await c.client.get("/notifications/users/fleet-7", headers=driver)
        assert [n["status"] for n in mine.json()["items"]] == ["sent", "sent"]
        assert len(smtp_server.messages) == 1
