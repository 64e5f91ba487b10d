"""The local HTTP API under abuse, against a running daemon over real sockets: who is
trusted as local, body limits enforced while reading, strict JSON, connection caps and
timeouts, the login throttle with attempts in flight, and the raised fd limit."""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from edge.api.json_io import dumps
from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from edge.ui.auth import local_request
from ocpp_handlers.schemas import Version
from tests.edge.conftest import ocpp_url
from tests.edge.ui.conftest import add_users, logged_in
from tests.harness.ports import free_port
from tests.harness.processes import edge_run_command
from tests.harness.site_config import write_site_toml
from tests.ocpp_client import RawCharger

ACTION = "/api/chargers/CP-LOCKED/reset"  # configured, never connected: 404 once let in


def url(daemon: EdgeDaemon) -> str:
    return f"http://127.0.0.1:{daemon.http_port}"


@contextlib.asynccontextmanager
async def raw(
    daemon: EdgeDaemon, local: str = "127.0.0.1"
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", daemon.http_port, local_addr=(local, 0)
    )
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def read_status(reader: asyncio.StreamReader) -> int:
    async with asyncio.timeout(15):
        line = await reader.readline()
    assert line.startswith(b"HTTP/1.1 "), line
    return int(line.split()[1])


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """(status, head, body) of one answer with a Content-Length."""
    status = await read_status(reader)
    async with asyncio.timeout(15):
        head = await reader.readuntil(b"\r\n\r\n")
        found = re.search(rb"content-length: (\d+)", head.lower())
        assert found is not None, head
        body = await reader.readexactly(int(found.group(1)))
    return status, head.lower(), body


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True when the server closed the connection (EOF or reset) without answering."""
    try:
        async with asyncio.timeout(15):
            return await reader.read(1) == b""
    except ConnectionResetError:
        return True


# --- loopback trust ------------------------------------------------------------------


async def test_plain_local_requests_are_trusted(api: httpx.AsyncClient, edge: EdgeDaemon) -> None:
    port = edge.http_port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", "[::1]"):
        reply = await api.post(ACTION, json={}, headers={"Host": host})
        assert reply.status_code == 404, (host, reply.text)  # past the guard
    same_origin = await api.post(ACTION, json={}, headers={"Origin": f"http://localhost:{port}"})
    assert same_origin.status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Real-IP": "192.0.2.7"},
        {"Host": "attacker.example"},  # DNS rebinding: the name resolves to 127.0.0.1
        {"Host": "attacker.example:8080"},
        {"Host": "localhost.attacker.example"},
        {"Forwarded": "for=192.0.2.7"},
        {"X-Forwarded-For": "192.0.2.7"},
        {"X-Forwarded-Host": "edge.example"},
        {"X-Forwarded-Proto": "https"},
        {"Origin": "http://attacker.example"},  # another site's page in a local browser
    ],
    ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items()),
)
async def test_loopback_trust_is_not_given_to_proxied_rebound_or_cross_site_requests(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for method, path in (("POST", ACTION), ("GET", "/api/chargers")):
        reply = await api.request(method, path, json={} if method == "POST" else None,
                                  headers=headers)  # fmt: skip
        assert reply.status_code == 401, (method, path, reply.text)
        assert reply.headers["www-authenticate"].startswith("Bearer")


async def test_two_host_headers_are_not_trusted(edge: EdgeDaemon) -> None:
    async with raw(edge) as (reader, writer):
        writer.write(
            b"GET /api/chargers HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: attacker.example\r\n\r\n"
        )
        assert await read_status(reader) in {400, 401}


async def test_loopback_trust_can_be_switched_off(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(http={"trust_loopback": False})
    async with EdgeDaemon(config) as daemon, httpx.AsyncClient(base_url=url(daemon)) as api:
        assert (await api.get("/api/chargers")).status_code == 401
        assert (await api.get("/healthz")).status_code == 200


# --- bodies --------------------------------------------------------------------------


async def test_a_declared_oversized_body_is_refused_before_it_is_sent(edge: EdgeDaemon) -> None:
    for path in ("/login", ACTION, "/api/chargers"):
        async with raw(edge) as (reader, writer):
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {300 * 1024 * 1024}\r\n\r\n".encode()
            )
            status, head, body = await read_response(reader)
            assert status == 413  # not one byte of the body was sent
            assert b"larger than" in body
            assert b"connection: close" in head
            assert await closed_by_server(reader)  # the body that would follow is not read


async def _stream_until_answered(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, total: int
) -> tuple[int, int]:
    """Send ``total`` bytes of a chunked body in 1 KiB chunks, a pause after each, until
    the server answers; returns (status, bytes sent by then)."""
    sent = 0
    answer: asyncio.Task[int] = asyncio.create_task(read_status(reader))
    try:
        while sent < total and not answer.done():
            chunk = b"x" * 1024
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            sent += len(chunk)
            await asyncio.sleep(0.002)
        return await answer, sent
    finally:
        answer.cancel()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/login", "application/x-www-form-urlencoded"), (ACTION, "application/json"),
     (ACTION, "text/plain")],
)  # fmt: skip
async def test_a_chunked_body_over_the_limit_is_refused_while_it_is_still_coming(
    edge: EdgeDaemon, path: str, content_type: str
) -> None:
    total = 4 * 1024 * 1024
    async with raw(edge) as (reader, writer):
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        status, sent = await _stream_until_answered(reader, writer, total)
        assert status == 413
        assert sent < total  # answered while the client still had most of it to send


async def test_bodies_within_the_limit_still_work(api: httpx.AsyncClient) -> None:
    reply = await api.post(ACTION, json={"type": "soft", "padding": "x" * 30_000})
    assert reply.status_code == 404  # reached the route


# --- strict JSON -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b'{"id_tag": "A", "evse_id": NaN}', b'{"id_tag": "A", "evse_id": Infinity}',
     b'{"id_tag": "A", "evse_id": -Infinity}', b'{"id_tag": "A", "evse_id": 1e400}',
     b'{"id_tag": "\\ud800"}', b'{"id_tag": "\\udfff x"}', b'{"id_tag": "\xff\xfe"}',
     b'{"id_tag": "A"', b"[" * 10_000],
    ids=["nan", "inf", "-inf", "1e400", "lone-high", "lone-low", "bad-utf8", "cut", "deep"],
)  # fmt: skip
async def test_json_bodies_that_are_not_strict_json_get_a_400_in_json(
    api: httpx.AsyncClient, body: bytes
) -> None:
    reply = await api.post(
        "/api/chargers/CP-LOCKED/remote-start",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 400, reply.text
    assert "not valid JSON" in reply.json()["detail"]


async def test_validation_errors_echoing_odd_input_are_json(api: httpx.AsyncClient) -> None:
    reply = await api.post(
        "/api/chargers/CP-LOCKED/remote-start", json={"id_tag": "A", "evse_id": "\u0000\U0001f600"}
    )
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "evse_id"]


def test_answers_with_odd_unicode_or_nan_still_render() -> None:
    rendered = dumps({"vendor": "Acme\ud800", "power_w": float("nan"), "ok": "\U0001f600"})
    assert rendered == '{"vendor":"Acme\ufffd","power_w":null,"ok":"\U0001f600"}'.encode()


# --- connections -------------------------------------------------------------------------


async def test_connections_over_the_cap_get_a_503_and_ocpp_still_accepts(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(http={"max_connections": 4, "request_timeout": 60})
    async with EdgeDaemon(config) as daemon, contextlib.AsyncExitStack() as stack:
        held = [await stack.enter_async_context(raw(daemon)) for _ in range(4)]
        async with raw(daemon) as (reader, writer):
            assert await read_status(reader) == 503
            assert b"too many connections" in await reader.read()
        ocpp_reader, ocpp_writer = await asyncio.open_connection("127.0.0.1", daemon.ocpp_port)
        ocpp_writer.write(b"GET /ocpp/CP-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await read_status(ocpp_reader)) != 503  # the charger side is not affected
        ocpp_writer.close()
        reader, writer = held[0]
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert await read_status(reader) == 200  # the admitted ones work
        writer.close()
        for _ in range(100):  # the slot it held is free again
            async with raw(daemon) as (reader, writer):
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if await read_status(reader) == 200:
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("a closed connection's slot was not given back")
        assert daemon.http.limits.refused >= 1
        async with httpx.AsyncClient(base_url=url(daemon)) as api:
            metrics = (await api.get("/metrics")).text
        refused = re.search(r"^evpark_http_connections_refused_total (\S+)$", metrics, re.M)
        assert refused is not None
        assert float(refused.group(1)) >= 1


async def test_one_address_cannot_take_every_connection(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(http={"max_connections_per_client": 3, "request_timeout": 60})
    async with EdgeDaemon(config) as daemon, contextlib.AsyncExitStack() as stack:
        for _ in range(3):
            await stack.enter_async_context(raw(daemon))
        async with raw(daemon) as (reader, _):
            assert await read_status(reader) == 503
            assert b"from your address" in await reader.read()
        async with raw(daemon, local="127.0.0.2") as (reader, writer):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert await read_status(reader) == 200


async def test_slow_or_silent_clients_are_disconnected(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(http={"request_timeout": 0.5, "idle_timeout": 1})
    async with EdgeDaemon(config) as daemon:
        async with raw(daemon) as (reader, _):  # connects and says nothing
            assert await closed_by_server(reader)
        async with raw(daemon) as (reader, writer):  # slowloris: a header byte at a time
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            ended = asyncio.create_task(closed_by_server(reader))
            for _ in range(2000):  # one byte every 10 ms, for up to 20 s
                if ended.done():
                    break
                with contextlib.suppress(ConnectionError):
                    writer.write(b"X")
                    await writer.drain()
                await asyncio.sleep(0.01)
            assert ended.done(), "the server kept a dripping request open"
            assert await ended
        async with raw(daemon) as (reader, writer):  # idle after an answer
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert (await read_response(reader))[0] == 200
            assert await closed_by_server(reader)
        assert daemon.http.limits.timed_out >= 2
        async with httpx.AsyncClient(base_url=url(daemon)) as api:  # and it still serves
            assert (await api.get("/healthz")).status_code == 200


# --- logins --------------------------------------------------------------------------

_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')


@dataclass(frozen=True)
class Guess:
    """A login form's fields and its cookie, sent as they are however often (each refusal
    sets a new login cookie, which a cookie jar would pick up)."""

    form: dict[str, str]
    headers: dict[str, str]


async def _guess(http: httpx.AsyncClient, username: str) -> Guess:
    page = await http.get("/login")
    found = _TOKEN.search(page.text)
    assert found is not None
    token = found.group(1)
    return Guess(
        {"username": username, "password": "not the password", "login_token": token},
        {"Cookie": f"evpark_login={token}"},
    )


async def test_many_concurrent_guesses_from_one_address_get_only_the_limit_checked(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(http={"max_connections_per_client": 400, "max_connections": 400})
    async with EdgeDaemon(config) as daemon:
        await add_users(daemon)
        limits = httpx.Limits(max_connections=300)
        async with httpx.AsyncClient(base_url=url(daemon), limits=limits, timeout=60) as http:
            guess = await _guess(http, "vic")  # a cheap hash (tests/edge/ui/conftest.py): quick
            replies = await asyncio.gather(
                *(http.post("/login", data=guess.form, headers=guess.headers) for _ in range(300))
            )
        statuses = [r.status_code for r in replies]
        assert statuses.count(401) <= daemon.config.http.login_attempts
        assert statuses.count(401) + statuses.count(429) == 300
        assert daemon.ui.auth.verifications <= daemon.config.http.login_attempts


async def test_a_forwarded_for_header_does_not_change_whose_guesses_they_are(
    edge: EdgeDaemon,
) -> None:
    await add_users(edge)
    async with httpx.AsyncClient(base_url=url(edge), timeout=30) as http:
        guess = await _guess(http, "vic")
        statuses = [
            (await http.post("/login", data=guess.form, headers={
                **guess.headers, "X-Forwarded-For": f"192.0.2.{n}", "X-Real-IP": f"192.0.2.{n}"}))
            .status_code
            for n in range(11)
        ]  # fmt: skip
    assert statuses == [401] * 10 + [429]  # one peer, whatever the headers say


async def test_guesses_from_many_addresses_at_once_wait_in_a_short_queue(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(http={"login_concurrency": 1, "login_queue": 2})
    async with EdgeDaemon(config) as daemon:
        await add_users(daemon)
        clients = [
            httpx.AsyncClient(
                base_url=url(daemon),
                timeout=60,
                transport=httpx.AsyncHTTPTransport(local_address=f"127.0.1.{n}"),
            )
            for n in range(1, 31)
        ]
        async with contextlib.AsyncExitStack() as stack:
            for client in clients:
                await stack.enter_async_context(client)
            # an unknown name: checked against a hash of the default (costly) parameters
            guesses = [await _guess(client, "nobody") for client in clients]
            replies = await asyncio.gather(
                *(client.post("/login", data=g.form, headers=g.headers)
                  for client, g in zip(clients, guesses, strict=True) for _ in range(3))
            )  # fmt: skip
        statuses = [r.status_code for r in replies]
        busy = [r for r in replies if r.status_code == 429]
        assert busy, statuses  # each address is far below its own limit: the queue said no
        assert all("busy" in r.text for r in busy)
        assert statuses.count(401) + len(busy) == 90
        assert daemon.ui.auth.verifications == statuses.count(401)


# --- the fd limit --------------------------------------------------------------------


def _start_with_fd_limit(tmp_path: Path, soft: int, hard: int) -> tuple[int, list[bytes]]:
    """`evpark edge run` started with these limits: its soft limit once ready, and its log
    lines until then."""
    config = write_site_toml(
        tmp_path / "site.toml",
        {
            "site": {"id": "fd-site", "environment": "development"},
            "ocpp": {"port": free_port()},
            "http": {"port": free_port()},
            "mqtt": {"url": f"mqtt://127.0.0.1:{free_port()}"},
        },
    )
    process = subprocess.Popen(
        edge_run_command(config, tmp_path / "data"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
    )  # fmt: skip
    try:
        assert process.stderr is not None
        lines: list[bytes] = []
        for line in process.stderr:
            lines.append(line)
            if b"edge.ready" in line:
                break
        else:
            raise AssertionError(b"the daemon did not start: " + b"".join(lines))
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        row = next(r for r in limits.splitlines() if r.startswith("Max open files"))
        return int(row.split()[3]), lines
    finally:
        process.kill()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


def test_the_daemon_raises_its_open_files_limit(tmp_path: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 4096:
        pytest.fail(f"the hard limit here is {hard}: the test needs more room")
    soft, lines = _start_with_fd_limit(tmp_path, 256, hard)
    assert soft == (65_536 if hard == resource.RLIM_INFINITY else min(65_536, hard))
    assert any(b"edge.fd_limit.raised" in line for line in lines)
    assert not any(b"edge.fd_limit.low" in line for line in lines)


def test_a_low_hard_fd_limit_is_warned_about(tmp_path: Path) -> None:
    soft, lines = _start_with_fd_limit(tmp_path, 256, 256)
    assert soft == 256
    warning = next(line for line in lines if b"edge.fd_limit.low" in line)
    assert b'"warning"' in warning


# --- what chargers stored --------------------------------------------------------------


async def test_odd_unicode_a_charger_sent_never_breaks_an_answer(
    edge: EdgeDaemon, api: httpx.AsyncClient
) -> None:
    odd = "A\u0000\u202e\U0001f600\uffff\u2028"
    async with RawCharger(ocpp_url(edge), "CP-ODD", Version.V16) as charger:
        await charger.call("BootNotification", {"chargePointVendor": odd, "chargePointModel": odd})
        await charger.call(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "OtherError", "status": "Faulted", "info": odd * 3,
             "vendorErrorCode": odd},
        )  # fmt: skip
        for path in ("/api/chargers", "/api/chargers/CP-ODD", "/api/chargers/CP-ODD/events",
                     "/api/events", "/api/sessions"):  # fmt: skip
            reply = await api.get(path)
            assert reply.status_code == 200, (path, reply.text[:300])
            assert reply.headers["content-type"] == "application/json"
        assert (await api.get("/api/chargers/CP-ODD")).json()["vendor"] == odd
        await add_users(edge)
        async with logged_in(edge, "vic") as viewer:
            for page in ("/", "/chargers", "/chargers/CP-ODD", "/events", "/sessions"):
                assert (await viewer.http.get(page)).status_code == 200, page


@pytest.mark.parametrize(
    ("peer", "headers", "local"),
    [("127.0.0.1", [("host", "127.0.0.1:8080")], True),
     ("::1", [("host", "[::1]:8080")], True),
     ("127.0.0.1", [("host", "edge.local")], True),  # the configured http.host
     ("10.0.0.5", [("host", "127.0.0.1:8080")], False),  # not from this host
     ("127.0.0.1", [], False),  # HTTP/1.0 without Host
     ("127.0.0.1", [("host", "")], False),
     ("127.0.0.1", [("host", "localhost"), ("host", "localhost")], False),
     ("127.0.0.1", [("host", "localhost"), ("origin", "null")], False),
     ("127.0.0.1", [("host", "localhost"), ("via", "1.1 proxy")], False),
     ("127.0.0.1", [("host", "localhost"), ("x-forwarded-port", "443")], False)],
)  # fmt: skip
def test_the_loopback_rule(peer: str, headers: list[tuple[str, str]], local: bool) -> None:
    scope = {
        "type": "http",
        "client": (peer, 50000),
        "headers": [(k.encode(), v.encode()) for k, v in headers],
    }
    assert local_request(scope, "edge.local") is local
