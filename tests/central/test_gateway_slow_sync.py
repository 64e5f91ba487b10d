"""The gateway in front of a slow sync: a batch stored slowly is a 200, never a 503 (the
edge would send it again and the breaker would open); sync slower than the ingest
timeout is a 503 with ``Retry-After``, sent once, and that does count."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from central.gateway.timeouts import call_timeout
from central.infra.http_client import ResilientClient, Unavailable
from central.infra.resilience import ResilienceSettings
from contract.sync_api import COMMANDS_PATH, EVENTS_PATH, STATUS_PATH
from tests.central.conftest import eventually

ACK = {"stored": 3, "duplicates": 0, "last_sequence": 3}


@dataclass
class SlowSync:
    """An HTTP server standing for sync: uploads of events answered after ``delay_s``,
    its ``/healthz`` and ``/readyz`` after ``probe_delay_s``."""

    url: str
    delay_s: float
    probe_delay_s: float = 0.0
    seen: list[str] = field(default_factory=list)


@asynccontextmanager
async def slow_sync(delay_s: float, probe_delay_s: float = 0.0) -> AsyncIterator[SlowSync]:
    server_state = SlowSync("", delay_s, probe_delay_s)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            method, path, _ = head.split("\r\n", 1)[0].split(" ", 2)
            length = next(
                (int(line.split(":", 1)[1]) for line in head.split("\r\n")
                 if line.lower().startswith("content-length:")),
                0,
            )  # fmt: skip
            await reader.readexactly(length)
            server_state.seen.append(f"{method} {path}")
            if method == "POST" and path == EVENTS_PATH:
                await asyncio.sleep(server_state.delay_s)
            elif path in ("/healthz", "/readyz"):
                await asyncio.sleep(server_state.probe_delay_s)
            body = json.dumps(ACK if path == EVENTS_PATH else {"last_sequence": 3}).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the gateway gave up on this call
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server_state.url = f"http://127.0.0.1:{port}"
    async with server:
        yield server_state


async def test_a_slow_but_stored_batch_is_200_and_the_breaker_stays_closed(
    central_factory: Any,
) -> None:
    # sync takes three times the ordinary timeout, as under a reconnect storm
    async with (
        slow_sync(delay_s=1.5) as sync,
        central_factory(
            service_urls={"sync": sync.url},
            resilience={"timeout_s": 0.5, "ingest_timeout_s": 10, "breaker_failures": 2},
        ) as central,
    ):
        sites = [await central.auth("site", f"site-{n}") for n in range(4)]
        answers = await asyncio.gather(
            *(central.client.post(EVENTS_PATH, content=b"{}", headers=site) for site in sites)
        )
        assert [a.status_code for a in answers] == [200] * 4
        assert answers[0].json() == ACK
        # each batch went to sync once: none was resent by the gateway
        assert sync.seen.count(f"POST {EVENTS_PATH}") == 4
        # the breaker did not open: sync's other paths still answer
        status = await central.client.get(STATUS_PATH, headers=sites[0])
        assert status.status_code == 200


async def test_sync_past_the_ingest_timeout_is_a_503_with_retry_after_sent_once(
    central_factory: Any,
) -> None:
    async with (
        slow_sync(delay_s=3.0) as sync,
        central_factory(
            service_urls={"sync": sync.url},
            resilience={"timeout_s": 0.5, "ingest_timeout_s": 1, "breaker_failures": 1},
        ) as central,
    ):
        site = await central.auth("site", "site-1")
        r = await central.client.post(EVENTS_PATH, content=b"{}", headers=site)
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) >= 1
        # a POST that may have reached sync is not repeated by the gateway
        assert sync.seen == [f"POST {EVENTS_PATH}"]
        # really overloaded: that counts, and the open breaker sheds load with Retry-After
        r = await central.client.post(EVENTS_PATH, content=b"{}", headers=site)
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) >= 1
        assert sync.seen == [f"POST {EVENTS_PATH}"]


async def test_slow_health_probes_do_not_open_the_breaker_of_the_traffic(
    central_factory: Any,
) -> None:
    # sync busy with a storm: its readiness answers later than the probe waits (2 s)
    async with (
        slow_sync(delay_s=0.0, probe_delay_s=3.0) as sync,
        central_factory(
            service_urls={"sync": sync.url}, resilience={"retries": 0, "breaker_failures": 1}
        ) as central,
    ):
        ready = await central.client.get("/readyz")
        assert ready.json()["services"]["sync"].startswith("down")
        site = await central.auth("site", "site-1")
        r = await central.client.post(EVENTS_PATH, content=b"{}", headers=site)
        assert r.status_code == 200


async def test_uploads_to_sync_do_not_take_the_connections_of_other_services(
    central_factory: Any,
) -> None:
    async with (
        slow_sync(delay_s=1.5) as sync,
        central_factory(
            # the fake answers parking's paths too, at once
            service_urls={"sync": sync.url, "parking": sync.url},
            resilience={"timeout_s": 0.5, "ingest_timeout_s": 10, "max_connections": 1},
        ) as central,
    ):
        site = await central.auth("site", "site-1")
        operator = await central.auth("operator")
        upload = asyncio.create_task(central.client.post(EVENTS_PATH, content=b"{}", headers=site))

        async def upload_arrived() -> bool:
            return f"POST {EVENTS_PATH}" in sync.seen

        await eventually(upload_arrived)
        # sync's one connection is busy: parking has its own
        status = await central.client.get("/parking/status", headers=operator)
        assert status.status_code == 200
        assert (await upload).status_code == 200


async def test_a_saturated_connection_pool_does_not_open_the_breaker() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no connection free", request=request)

    settings = ResilienceSettings(breaker_failures=1)
    client = ResilientClient(settings, transport=httpx.MockTransport(refuse))
    try:
        for _ in range(3):
            with pytest.raises(Unavailable) as raised:
                await client.request("sync", "POST", "http://sync/sync/v1/events")
            assert raised.value.retry_after >= 1
        assert client.breaker("sync").mode == "closed"
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("POST", EVENTS_PATH, "", 25.0),
        ("GET", COMMANDS_PATH, "wait=25", 30.0),
        ("GET", COMMANDS_PATH, "wait=9999", 125.0),
        ("GET", COMMANDS_PATH, "wait=soon", 5.0),
        ("GET", STATUS_PATH, "", 5.0),
        ("GET", EVENTS_PATH, "", 5.0),
    ],
)
def test_call_timeout_by_route(method: str, path: str, query: str, expected: float) -> None:
    assert call_timeout(method, path, query, ResilienceSettings()) == expected
