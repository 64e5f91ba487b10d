"""Issue 10, point 1: no single message or connection takes a site down. Each case runs
against a real daemon: the bad input gets its spec answer, and the site goes on serving
another charger and the local API."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, overload

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import InvalidStatus
from websockets.frames import Close, CloseCode, Opcode

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from edge.storage.sqlite import StoreError, Unit
from ocpp_handlers.schemas import Version
from tests.edge.conftest import ocpp_url
from tests.edge.ocpp.test_ws_framing import RawClient
from tests.ocpp_client import CallErrorReceived, RawCharger
from tests.ocpp_flows import flow_for
from tests.polling import eventually

TS = "2026-11-24T08:00:00Z"
BIG = 2**63  # one more than SQLite's largest integer


@pytest.fixture
async def site(config_factory: Callable[..., SiteConfig]) -> AsyncIterator[EdgeDaemon]:
    async with EdgeDaemon(config_factory(slots=[{"id": "B1"}])) as daemon:
        yield daemon


@pytest.fixture
async def api(site: EdgeDaemon) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{site.http_port}", timeout=15
    ) as client:
        yield client


async def _site_goes_on(site: EdgeDaemon, api: httpx.AsyncClient, version: Version) -> None:
    """Another charger is answered, the API writes, /healthz is ok, nothing failed."""
    async with RawCharger(ocpp_url(site), "CP-WELL", version) as other:
        assert (await flow_for(other).boot())["status"] == "Accepted"
        assert (await other.call("Heartbeat", {}))["currentTime"]
    reply = await api.post("/api/slots/B1/out-of-service", json={"out_of_service": True})
    assert reply.status_code == 200, reply.text
    health = await api.get("/healthz")
    assert health.status_code == 200
    assert health.json()["store"]["writer"] == "running"


OVERFLOWS = [
    (
        Version.V16,
        "StatusNotification",
        {"connectorId": BIG, "errorCode": "NoError", "status": "Available"},
    ),
    (
        Version.V16,
        "MeterValues",
        {"connectorId": BIG, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "1"}]}]},
    ),
    (
        Version.V16,
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "TAG-OK",
            "meterStart": 0,
            "timestamp": TS,
            "reservationId": BIG,
        },
    ),
    (
        Version.V201,
        "StatusNotification",
        {"timestamp": TS, "connectorStatus": "Available", "evseId": BIG, "connectorId": 1},
    ),
    (
        Version.V201,
        "MeterValues",
        {"evseId": BIG, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": 1}]}]},
    ),
    (
        Version.V201,
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": TS,
            "triggerReason": "Authorized",
            "seqNo": BIG,
            "transactionInfo": {"transactionId": "T-1"},
            "evse": {"id": 1, "connectorId": 1},
        },
    ),
]


@pytest.mark.parametrize(
    ("version", "action", "payload"),
    OVERFLOWS,
    ids=[f"{v.value}-{a}" for v, a, _ in OVERFLOWS],
)
async def test_an_integer_beyond_64_bits_is_refused_and_the_site_goes_on(
    site: EdgeDaemon,
    api: httpx.AsyncClient,
    version: Version,
    action: str,
    payload: dict[str, Any],
) -> None:
    async with RawCharger(ocpp_url(site), "CP-HUGE", version) as charger:
        await flow_for(charger).boot()
        with pytest.raises(CallErrorReceived) as refused:
            await charger.call(action, payload)
        assert refused.value.code == "PropertyConstraintViolation"
        assert "64-bit" in refused.value.description
        assert (await charger.call("Heartbeat", {}))["currentTime"]
    await _site_goes_on(site, api, version)


async def test_the_largest_64_bit_integer_is_stored(site: EdgeDaemon) -> None:
    async with RawCharger(ocpp_url(site), "CP-EDGE", Version.V16) as charger:
        await flow_for(charger).boot()
        await charger.call(
            "StatusNotification",
            {"connectorId": BIG - 1, "errorCode": "NoError", "status": "Available"},
        )
    stored = await site.store.read(
        lambda c: c.execute(
            "SELECT MAX(evse_id) FROM evses WHERE charger_id = 'CP-EDGE'"
        ).fetchone()
    )
    assert stored[0] == BIG - 1


def _nested(levels: int) -> Any:
    value: Any = "core"
    for _ in range(levels):
        value = {"in": [value]} if isinstance(value, str) else [value]
    return value


async def test_deep_nesting_is_a_formation_error_and_moderate_nesting_is_accepted(
    site: EdgeDaemon, api: httpx.AsyncClient, version: Version
) -> None:
    # 300 levels: more than orjson writes back out (254), as a fuzzer found
    deep = '[2,"d1","DataTransfer",{"vendorId":"acme","data":' + "[" * 300 + "]" * 300 + "}]"
    async with RawCharger(ocpp_url(site), "CP-DEEP", version) as charger:
        await flow_for(charger).boot()
        reply = await charger.send_raw(deep, "d1")
        assert reply[:3] == [
            4,
            "d1",
            "FormationViolation" if version is Version.V16 else "FormatViolation",
        ]
        assert "deeper than 32" in reply[3]
        # vendor data nested a little is fine (the deepest official payload nests 13);
        # 1.6 carries it as a string
        data = _nested(20) if version is Version.V201 else orjson.dumps(_nested(20)).decode()
        answer = await charger.call("DataTransfer", {"vendorId": "acme", "data": data})
        assert "status" in answer
    await _site_goes_on(site, api, version)


@pytest.mark.parametrize("type_id", ["2.0", "true", "2.5", '"2"'])
async def test_a_message_type_id_that_is_not_an_integer_is_refused(
    site: EdgeDaemon, version: Version, type_id: str
) -> None:
    async with RawCharger(ocpp_url(site), "CP-FLOAT", version) as charger:
        reply = await charger.send_raw(f'[{type_id}, "t1", "Heartbeat", {{}}]', "t1")
        assert reply[:3] == [
            4,
            "t1",
            "FormationViolation" if version is Version.V16 else "RpcFrameworkError",
        ]
        assert (await charger.call("Heartbeat", {}))["currentTime"]


@pytest.mark.parametrize(
    "frame",
    [
        '[2, "j1", "DataTransfer", {"vendorId": "acme", "data": NaN}]',
        '[2, "j1", "DataTransfer", {"vendorId": "acme", "data": "\\ud800"}]',
        '[2, "j1", "DataTransfer", {"vendorId": "acme", "data": 1e400}]',
    ],
    ids=["nan", "lone-surrogate", "infinite"],
)
async def test_json_that_is_not_json_is_a_formation_error(
    site: EdgeDaemon, version: Version, frame: str
) -> None:
    async with RawCharger(ocpp_url(site), "CP-JSON", version) as charger:
        reply = await charger.send_raw(frame, "-1")
        assert reply[:3] == [
            4,
            "-1",
            "FormationViolation" if version is Version.V16 else "RpcFrameworkError",
        ]
        assert (await charger.call("Heartbeat", {}))["currentTime"]


async def test_a_subprotocol_not_spoken_exactly_gets_400_before_the_upgrade(
    site: EdgeDaemon,
) -> None:
    for offered in (["ocpp1.6x"], ["xocpp2.0.1"], ["ocpp1.6x", "ocpp2.0"]):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(f"{ocpp_url(site)}/CP-SUB", subprotocols=offered)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 400
    async with websockets.connect(
        f"{ocpp_url(site)}/CP-SUB",
        subprotocols=["ocpp1.6x", "ocpp1.6"],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "ocpp1.6"


async def test_a_binary_frame_closes_with_1003_and_others_are_served(
    site: EdgeDaemon, api: httpx.AsyncClient
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", site.ocpp_port)
    raw = RawClient(reader, writer)
    await raw.handshake()
    await raw.send(raw.frame(Opcode.BINARY, b'[2,"b1","Heartbeat",{}]'))
    close = await raw.next_frame()
    assert close.opcode is Opcode.CLOSE
    assert Close.parse(bytes(close.data)).code == CloseCode.UNSUPPORTED_DATA
    writer.close()
    await _site_goes_on(site, api, Version.V16)


async def test_connections_beyond_the_limit_are_refused_at_once(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(ocpp={"max_connections": 3, "handshake_timeout": 60})
    async with EdgeDaemon(config) as daemon:
        # idle TCP connections that never send a handshake hold the three places
        idle = [await asyncio.open_connection("127.0.0.1", daemon.ocpp_port) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.ocpp_port)
        async with asyncio.timeout(10):
            answer = await reader.read()  # answered and closed without sending a byte
        writer.close()
        assert answer.startswith(b"HTTP/1.1 503 ")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.http_port}") as api:
            metrics = (await api.get("/metrics")).text
        assert "evpark_ocpp_connections_refused_total 1.0" in metrics
        # a place that frees up can be taken by a charger
        idle.pop()[1].close()

        async def charger_served() -> bool:
            try:
                async with RawCharger(ocpp_url(daemon), "CP-LATE", Version.V16) as charger:
                    return bool((await charger.call("Heartbeat", {}))["currentTime"])
            except (InvalidStatus, OSError):
                return False

        await eventually(charger_served, "a charger connects once a place is free")
        for _, idle_writer in idle:
            idle_writer.close()


async def test_a_connection_that_does_not_finish_its_handshake_is_closed(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(ocpp={"handshake_timeout": 0.3})
    async with EdgeDaemon(config) as daemon:
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.ocpp_port)
        writer.write(b"GET /ocpp/CP-SLOW HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        async with asyncio.timeout(10):
            assert await reader.read() == b""  # closed by the daemon
        writer.close()


class _Exploding(Sequence[Any]):
    """Parameters that raise something no unit handler catches: a bug nobody foresaw."""

    def __len__(self) -> int:
        return 1

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        raise WriterKiller

    def __iter__(self) -> Iterator[Any]:
        raise WriterKiller


class WriterKiller(BaseException):
    pass


async def test_a_dead_writer_fails_what_waits_and_stops_the_daemon(
    config_factory: Callable[..., SiteConfig],
) -> None:
    with pytest.raises(ExceptionGroup) as stopped:  # noqa: PT012 -- the daemon's whole life
        async with EdgeDaemon(config_factory()) as daemon:
            async with RawCharger(ocpp_url(daemon), "CP-LAST", Version.V16) as charger:
                await flow_for(charger).boot()
                poison = Unit()
                poison.add("INSERT INTO meta (key) VALUES (?)", _Exploding())
                with pytest.raises(StoreError):
                    await daemon.store.write(poison)
                health = daemon.store.health()
                assert (health["ok"], health["writer"]) == (False, "dead")
                # a charger's write now fails at once instead of waiting forever
                with pytest.raises(CallErrorReceived) as refused:
                    await flow_for(charger).boot()
                assert refused.value.code == "InternalError"
            # the daemon's wait ends with the writer's death: `evpark edge run` exits non-zero
            async with asyncio.timeout(10):
                with pytest.raises(RuntimeError, match="store-writer failed"):
                    await daemon.wait()
    assert stopped.group_contains(StoreError, match="writer died")


def test_sqlite_cannot_hold_what_the_bound_refuses() -> None:
    """The bound is SQLite's own: one past it does not fit an INTEGER."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (n INTEGER)")
    db.execute("INSERT INTO t VALUES (?)", (BIG - 1,))
    with pytest.raises(OverflowError):
        db.execute("INSERT INTO t VALUES (?)", (BIG,))
    db.close()
