"""The gateway's defences before any work is done: failed authentications throttled per
client address (X-Forwarded-For believed only from trusted proxies), and request bodies
limited per route while they are read."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from collections.abc import AsyncIterator, Generator
from typing import Any

import httpx
import pytest
import uvicorn

from central.gateway.clients import client_address, networks
from tests.central.conftest import Central, cloud_event, eventually
from tests.harness.ports import free_port

FEW_FAILURES = {"invalid_key_burst": 3, "invalid_key_per_minute": 1}


def _client(central: Central, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=central.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://central")


def _bad(n: int) -> dict[str, str]:
    return {"Authorization": f"Bearer evp_{n:016x}_not-a-secret"}


async def test_invalid_keys_are_throttled_per_address(central_factory: Any) -> None:
    async with central_factory(rate_limit=FEW_FAILURES) as central:
        known = await central.auth("operator")
        fresh = await central.auth("operator")
        async with (
            _client(central, "203.0.113.5") as attacker,
            _client(central, "198.51.100.7") as other,
        ):
            assert (await attacker.get("/parking/status", headers=known)).status_code == 200
            codes = [
                (await attacker.get("/parking/status", headers=_bad(i))).status_code
                for i in range(4)
            ]
            assert codes == [401, 401, 401, 429]
            r = await attacker.get("/parking/status")  # no key at all: the same budget
            assert r.status_code == 429
            assert int(r.headers["retry-after"]) >= 1
            assert "failed authentications" in r.json()["detail"]
            # over budget, a key is not even looked up: a valid one never seen is refused
            assert (await attacker.get("/parking/status", headers=fresh)).status_code == 429
            # one verified before costs no lookup and still passes
            assert (await attacker.get("/parking/status", headers=known)).status_code == 200
            # another address has its own budget
            assert (await other.get("/parking/status", headers=_bad(9))).status_code == 401
            assert (await other.get("/parking/status", headers=fresh)).status_code == 200


async def test_attempts_in_flight_count_against_the_budget(central_factory: Any) -> None:
    async with central_factory(rate_limit=FEW_FAILURES) as central:
        async with _client(central, "203.0.113.5") as attacker:
            answers = await asyncio.gather(
                *(attacker.get("/parking/status", headers=_bad(i)) for i in range(20))
            )
        codes = sorted(a.status_code for a in answers)
        assert codes == [401] * 3 + [429] * 17


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(central_factory: Any) -> None:
    limits = {"rate_limit": FEW_FAILURES, "trusted_proxies": ["10.0.0.0/8"]}
    async with (
        central_factory(**limits) as central,
        _client(central, "203.0.113.5") as liar,
        _client(central, "10.1.2.3") as proxy,
    ):
        # an untrusted peer cannot pick a new address (and budget) per request
        codes = [
            (
                await liar.get(
                    "/parking/status",
                    headers={**_bad(i), "X-Forwarded-For": f"192.0.2.{i}"},
                )
            ).status_code
            for i in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        # through the trusted proxy, each forwarded client has its own budget
        for _ in range(3):
            r = await proxy.get(
                "/parking/status", headers={**_bad(1), "X-Forwarded-For": "192.0.2.50"}
            )
            assert r.status_code == 401
        r = await proxy.get("/parking/status", headers={**_bad(1), "X-Forwarded-For": "192.0.2.50"})
        assert r.status_code == 429
        # a client cannot hide behind a forged entry left of the proxy's own
        r = await proxy.get(
            "/parking/status",
            headers={**_bad(1), "X-Forwarded-For": "198.51.100.1, 192.0.2.50"},
        )
        assert r.status_code == 429
        r = await proxy.get("/parking/status", headers={**_bad(1), "X-Forwarded-For": "192.0.2.51"})
        assert r.status_code == 401


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", "1.2.3.4", "203.0.113.5"),  # untrusted peer: header ignored
        ("10.0.0.1", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.1", "1.2.3.4, 10.0.0.2", "1.2.3.4"),  # two proxies of ours
        ("10.0.0.1", "9.9.9.9, 1.2.3.4", "1.2.3.4"),  # the client's own entry is not believed
        ("10.0.0.1", "garbage, 1.2.3.4", "1.2.3.4"),
        ("10.0.0.1", "1.2.3.4, garbage", "10.0.0.1"),
        ("10.0.0.1", None, "10.0.0.1"),
    ],
)
def test_client_address(peer: str, forwarded: str | None, client: str) -> None:
    assert client_address(peer, forwarded, networks(["10.0.0.0/8"])) == client


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def _served(central: Central) -> AsyncIterator[int]:
    """The running app behind a real uvicorn on a free port."""
    port = free_port()
    server = _Server(
        uvicorn.Config(central.app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    try:

        async def up() -> bool:
            return bool(server.started)

        await eventually(up, within=10, every=0.02)
        yield port
    finally:
        server.should_exit = True
        await task


async def test_a_100_mb_body_is_refused_before_it_is_read(central: Central) -> None:
    site = (await central.auth("site", "north"))["Authorization"]
    async with _served(central) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            "POST /sync/v1/events HTTP/1.1\r\nHost: central\r\n"
            f"Authorization: {site}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {100 * 1024 * 1024}\r\n\r\n"
        )
        writer.write(head.encode())
        await writer.drain()
        # the answer comes with none of the 100 MB sent
        status_line = await asyncio.wait_for(reader.readline(), 10)
        assert status_line.split()[1] == b"413"
        writer.close()


async def test_a_chunked_body_is_cut_off_at_the_routes_limit(central: Central) -> None:
    driver = await central.auth("driver", vehicles=("car-1",))
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while pulled < 100 * 16:  # 100 MB in 64 KB chunks, if anyone read it all
            pulled += 1
            yield b" " * 65536

    r = await central.client.post(
        "/parking/reserve",
        content=endless(),
        headers={**driver, "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert "larger than" in r.json()["detail"]
    assert pulled <= 2  # the default limit is 64 KB: cut off right after it

    # the sync ingest takes larger bodies: a 300 KB batch passes the limit
    site = await central.auth("site", "north")
    events = [
        cloud_event("north", i, "sensor.status", {"online": True, "note": "x" * 200})
        for i in range(1, 1001)
    ]
    body = json.dumps({"events": events}).encode()
    assert len(body) > 300_000
    r = await central.client.post(
        "/sync/v1/events",
        content=body,
        headers={**site, "content-type": "application/json"},
    )
    assert r.status_code == 200, r.text[:300]
    # the same size on a driver's route is refused
    r = await central.client.post(
        "/parking/reserve", content=body, headers={**driver, "content-type": "application/json"}
    )
    assert r.status_code == 413


async def test_a_gzip_body_counts_inflated(central_factory: Any) -> None:
    async with central_factory(body_limits={"sync": 200_000}) as central:
        site = await central.auth("site", "north")
        bomb = gzip.compress(b'{"events": [' + b" " * 1_000_000 + b"]}")
        assert len(bomb) < 10_000
        r = await central.client.post(
            "/sync/v1/events",
            content=bomb,
            headers={**site, "content-type": "application/json", "content-encoding": "gzip"},
        )
        assert r.status_code == 413
