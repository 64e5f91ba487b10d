"""The analytics service end to end: events on the bus -> usage, revenue, peak hours,
vehicle types and health figures over its HTTP API, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from central.app import create_app
from central.settings import CentralSettings
from contract.envelope import CloudEvent, topic_for
from tests.central.notification_fixtures import (
    FakeClock,
    HttpReceiver,
    database_url,
    http_receiver,
)
from tests.harness.ports import free_port

__all__ = ["database_url", "http_receiver"]  # fixtures used by name

T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # a Tuesday, 16:00 in Berlin
OPERATOR = {"x-evpark-key-id": "op-1", "x-evpark-scope": "operator"}
RATE = {
    "rate_id": "std",
    "currency": "EUR",
    "price_per_kwh": "0.30",
    "session_fee": "1.00",
    "timezone": "Europe/Berlin",
    "time_of_use": [
        {"days": [0, 1, 2, 3, 4], "start": "17:00", "end": "21:00", "price_per_kwh": "0.50"}
    ],
}


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class Events:
    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, site: str, type_: str, at: datetime, **data: Any) -> CloudEvent:
        self.sequence += 1
        return CloudEvent(
            id=f"ev-{self.sequence}",
            source=f"/sites/{site}",
            type=type_,
            time=at,
            sequence=self.sequence,
            data=data,
        )


async def test_events_in_figures_out(
    database_url: str, tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    settings = CentralSettings(
        data_dir=tmp_path,
        database_url=database_url,
        service_urls={"parking": http_receiver.url(""), "charging": down},
    )
    clock = FakeClock(T0 - timedelta(hours=1))
    app = create_app(settings, services=["analytics"], gateway=False, clock=clock)
    new = Events()
    async with app.router.lifespan_context(app):
        bus = app.state.bus

        async def publish(*events: CloudEvent) -> None:
            for event in events:
                await bus.publish(topic_for(event.type), event)
            await bus.idle()

        # site-b: one session without any known rate, then silence
        await publish(
            new(
                "site-b",
                "charging.completed",
                T0 - timedelta(hours=1),
                session_id="b1",
                energy_wh=5000,
                started_at=iso(T0 - timedelta(hours=2)),
                stopped_at=iso(T0 - timedelta(hours=1)),
                vehicle_id="EV-B",
            )
        )
        clock.advance(timedelta(hours=4))  # now: T0 + 3 h
        completed = new(
            "site-a",
            "charging.completed",
            T0 + timedelta(hours=2),
            session_id="a1",
            energy_wh=20_000,
            started_at=iso(T0),
            stopped_at=iso(T0 + timedelta(hours=2)),
            vehicle_id="EV-1",
            reason="Local",
        )
        await publish(
            new("site-a", "charging.rates_updated", T0 - timedelta(hours=1), rates=[RATE]),
            new(
                "site-a",
                "parking.reserved",
                T0 - timedelta(minutes=30),
                slot_id="A1",
                vehicle_id="EV-1",
                vehicle_type="suv",
            ),
            new(
                "site-a",
                "parking.occupied",
                T0,
                slot_id="A1",
                slot_type="ev",
                visit_id="v1",
                arrived_at=iso(T0),
            ),
            new(
                "site-a",
                "charging.started",
                T0,
                session_id="a1",
                vehicle_id="EV-1",
                vehicle_type="suv",
                started_at=iso(T0),
            ),
            new(
                "site-a",
                "charging.started",
                T0,
                session_id="a2",
                vehicle_id="EV-2",
                started_at=iso(T0),
            ),
            completed,
            new(
                "site-a",
                "parking.vacated",
                T0 + timedelta(hours=2),
                slot_id="A1",
                visit_id="v1",
                arrived_at=iso(T0),
                departed_at=iso(T0 + timedelta(hours=2)),
                duration_s=7200,
            ),
            new(
                "site-a",
                "parking.occupied",
                T0 + timedelta(hours=1),
                slot_id="A2",
                visit_id="v2",
                arrived_at=iso(T0 + timedelta(hours=1)),
            ),
            completed,  # redelivered: counts once
        )

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://central", headers=OPERATOR
        ) as client:
            window = {"from": iso(T0 - timedelta(hours=1)), "to": iso(T0 + timedelta(hours=3))}

            usage = await client.get(
                "/analytics/usage", params={**window, "granularity": "total", "site_id": "site-a"}
            )
            assert usage.status_code == 200, usage.text
            (site_a,) = usage.json()["sites"]
            totals = site_a["totals"]
            assert totals["reservations"] == 1
            assert totals["arrivals"] == 2
            assert totals["departures"] == 1
            assert totals["occupied_slot_hours"] == 4.0  # v1 2 h + v2 2 h so far
            assert totals["slots_seen"] == 2
            assert totals["occupancy"] == 0.5
            assert totals["sessions"]["started"] == 2
            assert totals["sessions"]["completed"] == 1
            assert totals["energy_kwh"] == 20.0
            assert site_a["occupied_now"] == 1

            hourly = (
                await client.get("/analytics/usage", params={**window, "granularity": "hour"})
            ).json()
            hourly_sites = {s["site_id"]: s for s in hourly["sites"]}
            assert hourly_sites["site-b"]["totals"]["sessions"]["completed"] == 1  # at T0 - 1 h
            assert [p["energy_kwh"] for p in hourly_sites["site-a"]["periods"]] == [0, 10, 10, 0]

            revenue = (
                await client.get(
                    "/analytics/revenue",
                    params={
                        "from": iso(T0 - timedelta(hours=3)),
                        "to": window["to"],
                        "granularity": "total",
                    },
                )
            ).json()
            by_site = {s["site_id"]: s for s in revenue["sites"]}
            (eur,) = by_site["site-a"]["currencies"]
            assert eur["currency"] == "EUR"
            assert eur["sessions"] == 1
            assert eur["energy"] == "8.00"  # 10 kWh at 0.30, 10 kWh at 0.50 after 17:00
            assert eur["total"] == "9.00"
            assert by_site["site-b"]["unpriced_sessions"] == 1
            assert by_site["site-b"]["currencies"] == []

            peak = (
                await client.get(
                    "/analytics/peak-hours",
                    params={**window, "metric": "energy", "tz": "Europe/Berlin"},
                )
            ).json()
            assert peak["peak_hours"] == [16, 17]

            types = (await client.get("/analytics/vehicle-types", params=window)).json()["types"]
            assert types == [
                {
                    "vehicle_type": "unknown",
                    "reservations": 0,
                    "visits": 2,
                    "sessions": 1,
                    "vehicles": 1,
                    "share": 0.6,
                },
                {
                    "vehicle_type": "suv",
                    "reservations": 1,
                    "visits": 0,
                    "sessions": 1,
                    "vehicles": 1,
                    "share": 0.4,
                },
            ]

            health = (await client.get("/metrics/health")).json()
            assert health["status"] == "degraded"
            assert health["services"]["analytics"]["status"] == "up"
            assert health["services"]["parking"] == {"status": "up", "mode": "remote"}
            assert health["services"]["charging"]["status"] == "down"
            assert any("charging" in problem for problem in health["problems"])
            sites = {s["site_id"]: s["status"] for s in health["sites"]}
            assert sites == {"site-a": "online", "site-b": "stale"}
            assert health["bus"]["parking.events"]["events"] == 4
            assert (
                health["bus"]["charging.events"]["lag_s"] == 3600.0
            )  # the last new one is 1 h old

            # bad input is a clear 4xx
            for params in (
                {"from": window["to"], "to": window["from"]},
                {"from": "2026-03-10T10:00:00"},
                {"tz": "Mars/Olympus"},
                {"granularity": "fortnight"},
                {
                    "from": "2025-01-01T00:00:00Z",
                    "to": "2026-03-01T00:00:00Z",
                    "granularity": "hour",
                },
                {"from": "2020-01-01T00:00:00Z"},
            ):
                answer = await client.get("/analytics/usage", params=params)
                assert answer.status_code == 422, params
            driver = {"x-evpark-key-id": "d-1", "x-evpark-scope": "driver"}
            assert (await client.get("/analytics/usage", headers=driver)).status_code == 403
