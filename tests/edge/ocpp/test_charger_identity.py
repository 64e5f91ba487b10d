"""Charger identity against a running daemon: lockouts, ids, approval, duplicate connections."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
import websockets
from pydantic import ValidationError
from websockets.exceptions import ConnectionClosed, InvalidStatus

from edge.config import SiteConfig
from edge.core.ids import ChargerId
from edge.daemon import EdgeDaemon, database_path
from edge.ocpp import admission as chargers
from edge.ocpp.throttle import Scope
from edge.storage.sqlite import Unit, migrate
from edge.storage.sqlite import connect as connect_store
from tests.edge.conftest import PASSWORD, make_config, ocpp_url, site_file
from tests.harness.processes import run_evpark_async
from tests.polling import eventually

BOOT_16 = '[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'
HEARTBEAT_16 = '[2,"2","Heartbeat",{}]'


def basic(charger_id: str, password: str) -> tuple[str, str]:
    token = base64.b64encode(f"{charger_id}:{password}".encode()).decode()
    return ("Authorization", f"Basic {token}")


def connect(
    daemon: EdgeDaemon,
    charger_id: str,
    *,
    password: str | None = None,
    user: str | None = None,
    source: str = "127.0.0.1",
    headers: list[tuple[str, str]] | None = None,
) -> Any:
    """A websockets client connection (``async with`` or awaited) from address ``source``."""
    extra = list(headers or [])
    if password is not None:
        extra.append(basic(user or charger_id, password))
    return websockets.connect(
        f"{ocpp_url(daemon)}/{charger_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=extra,
        local_addr=(source, 0),
        open_timeout=10,
    )


async def refused(daemon: EdgeDaemon, charger_id: str, **options: Any) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as refusal:
        async with connect(daemon, charger_id, **options):
            pass
    return refusal.value


async def boots(daemon: EdgeDaemon, charger_id: str, **options: Any) -> None:
    async with connect(daemon, charger_id, **options) as ws:
        await ws.send(BOOT_16)
        assert '"Accepted"' in str(await ws.recv())


async def eventually_boots(daemon: EdgeDaemon, charger_id: str, **options: Any) -> None:
    """Retry like a charger does, until the daemon lets it in (or the test gives up)."""
    statuses: list[int] = []

    async def let_in() -> bool:
        try:
            await boots(daemon, charger_id, **options)
        except InvalidStatus as err:
            statuses.append(err.response.status_code)
            return False
        return True

    await eventually(let_in, f"{charger_id} let in", within=20)
    assert set(statuses) <= {404, 409, 429}, statuses


def metric(daemon: EdgeDaemon, name: str, **labels: str) -> float:
    return daemon.registry.get_sample_value(name, labels) or 0.0


# --- lockout ---------------------------------------------------------------------------


async def test_brute_force_is_locked_out_but_the_real_charger_gets_in(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(ocpp={"lockout": {"failures": 3, "window": 60, "base": 2, "cap": 2}})
    async with EdgeDaemon(config) as daemon:
        await boots(daemon, "CP-LOCKED", password=PASSWORD)  # the charger, from its address
        for _ in range(3):
            wrong = await refused(daemon, "CP-LOCKED", password="guess-1234", source="127.0.0.2")
            assert wrong.response.status_code == 401
        # locked: even the right password is not checked from there
        locked = await refused(daemon, "CP-LOCKED", password=PASSWORD, source="127.0.0.2")
        assert locked.response.status_code == 429
        assert int(locked.response.headers["Retry-After"]) >= 1
        # the id is locked for guessers elsewhere too...
        elsewhere = await refused(daemon, "CP-LOCKED", password="guess-5678", source="127.0.0.3")
        assert elsewhere.response.status_code == 429
        # ...but not for the address the charger authenticated from
        await boots(daemon, "CP-LOCKED", password=PASSWORD)
        # the guesser's address stays locked until its lockout is over
        again = await refused(daemon, "CP-LOCKED", password=PASSWORD, source="127.0.0.2")
        assert again.response.status_code == 429
        await eventually_boots(daemon, "CP-LOCKED", password=PASSWORD, source="127.0.0.2")

        failures = "evpark_ocpp_upgrade_failures_total"
        assert metric(daemon, failures, reason="bad_credentials") == 3
        assert metric(daemon, "evpark_ocpp_lockouts_total", scope="address") == 1
        assert metric(daemon, "evpark_ocpp_lockouts_total", scope="charger") == 1
        assert metric(daemon, "evpark_ocpp_upgrades_throttled_total", scope="address") >= 1


async def test_guessing_ids_locks_the_address_out(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(
        ocpp={"auto_register": False, "lockout": {"failures": 4, "base": 60, "cap": 60}}
    )
    async with EdgeDaemon(config) as daemon:
        statuses = [
            (await refused(daemon, f"CP-GUESS-{n}", source="127.0.0.5")).response.status_code
            for n in range(6)
        ]
        assert statuses == [404, 404, 404, 404, 429, 429]
        assert metric(daemon, "evpark_ocpp_upgrade_failures_total", reason="unknown") == 4
        # unknown ids are not remembered (an attacker cycling ids cannot fill the table)
        assert daemon.ocpp.throttle.tracked(Scope.CHARGER) == 0
        await boots(daemon, "CP-LOCKED", password=PASSWORD)  # other addresses are not affected


# --- identity rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("CP-1%0A", 400),  # an encoded newline
        ("CP-1%00", 400),
        ("%D0%A1P-1", 400),  # a Cyrillic capital Es that looks like a C
        ("CP%3A1", 400),  # ':' ends the Basic auth user
        ("CP%201", 400),
        ("%FF%FE", 400),  # not UTF-8
        ("x" * 49, 400),
        ("", 404),
    ],
)
async def test_ids_outside_the_ocpp_identity_rules_are_refused(
    edge: EdgeDaemon, path: str, status: int
) -> None:
    # the test daemon has auto_register on: each of these would otherwise be admitted
    assert (await refused(edge, path)).response.status_code == status
    assert edge.site.chargers == {}


async def test_ids_ignore_case_so_a_configured_charger_cannot_be_shadowed(
    edge: EdgeDaemon,
) -> None:
    # auto_register is on, yet "cp-locked" is CP-LOCKED and needs its password
    assert (await refused(edge, "cp-locked")).response.status_code == 401
    await boots(edge, "cp-locked", password=PASSWORD, user="Cp-Locked")
    assert list(edge.site.chargers) == ["CP-LOCKED"]


def test_charger_ids_in_the_config_follow_the_same_rules(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"chargers\.0\.id"):
        make_config(tmp_path, chargers=[{"id": "CP:1"}])
    with pytest.raises(ValidationError, match="duplicate chargers"):
        make_config(tmp_path, chargers=[{"id": "CP-1"}, {"id": "cp-1"}])


async def test_two_authorization_headers_get_400(edge: EdgeDaemon) -> None:
    both = [basic("CP-LOCKED", PASSWORD), basic("CP-LOCKED", "another-password")]
    answer = await refused(edge, "CP-LOCKED", headers=both)
    assert answer.response.status_code == 400
    assert b"Authorization" in answer.response.body
    await boots(edge, "CP-LOCKED", password=PASSWORD)  # and the daemon goes on


# --- production ------------------------------------------------------------------------


def test_production_refuses_auto_register_and_chargers_without_credentials(
    tmp_path: Path,
) -> None:
    production = {"id": "test-site", "environment": "production"}
    with pytest.raises(ValidationError) as refused_config:
        make_config(tmp_path, site=production, chargers=[{"id": "CP-OPEN"}])
    message = str(refused_config.value)
    assert "ocpp.auto_register admits any charger without credentials" in message
    assert "charger 'CP-OPEN' has no password" in message
    # with passwords and auto_register off it is fine, and keeps the live connection
    config = make_config(tmp_path, site=production, ocpp={"auto_register": False})
    assert config.replace_connection == "oldest"
    assert make_config(tmp_path).replace_connection == "newest"  # development


def test_production_accepts_passwordless_chargers_with_client_certificates(
    tmp_path: Path,
) -> None:
    tls = {"cert_file": "s.pem", "key_file": "s.key", "client_ca_file": "ca.pem"}
    config = make_config(
        tmp_path,
        site={"id": "test-site", "environment": "production"},
        ocpp={"auto_register": False, "tls": tls},
        chargers=[{"id": "CP-MTLS"}],
    )
    assert config.mutual_tls


# --- auto-registered chargers and `evpark chargers` ------------------------------------


async def test_auto_registered_chargers_need_approval_once_auto_register_is_off(
    config_factory: Callable[..., SiteConfig], tmp_path: Path
) -> None:
    fast = {"registry_refresh": 0.1}
    async with EdgeDaemon(config_factory(ocpp={"auto_register": True, **fast})) as daemon:
        await boots(daemon, "CP-AUTO-1")
        await boots(daemon, "CP-AUTO-2")
    config = config_factory(ocpp={"auto_register": False, **fast})
    toml = str(site_file(tmp_path, config))
    async with EdgeDaemon(config) as daemon:
        # the hole this closes: ids let in once stayed in without a password
        assert (await refused(daemon, "CP-AUTO-1")).response.status_code == 404
        listed = await run_evpark_async("chargers", "list", "--config", toml)
        assert listed.code == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert [line.split()[:2] for line in lines] == [
            ["CP-AUTO-1", "pending"],
            ["CP-AUTO-2", "pending"],
        ]
        assert "CP-LOCKED" not in listed.stdout  # configured chargers are the file's business

        approved = await run_evpark_async("chargers", "approve", "cp-auto-1", "--config", toml)
        assert approved.code == 0, approved.stderr
        assert approved.stdout.strip() == "approved CP-AUTO-1"
        await eventually_boots(daemon, "CP-AUTO-1")  # the running daemon picks it up

        async with connect(daemon, "CP-AUTO-1") as ws:
            await ws.send(BOOT_16)
            await ws.recv()
            removed = await run_evpark_async("chargers", "remove", "CP-AUTO-1", "--config", toml)
            assert removed.code == 0, removed.stderr
            async with asyncio.timeout(10):  # disconnected, not left running
                await ws.wait_closed()
            assert ws.close_code == 4003
        assert (await refused(daemon, "CP-AUTO-1")).response.status_code == 404

        async def forgotten() -> bool:  # the live views no longer show it
            return "CP-AUTO-1" not in daemon.site.chargers and "CP-AUTO-2" in daemon.site.chargers

        await eventually(forgotten, "the removed charger is forgotten")
        listed = await run_evpark_async("chargers", "list", "--config", toml)
        assert [line.split()[0] for line in listed.stdout.splitlines()] == ["CP-AUTO-2"]
        configured = await run_evpark_async("chargers", "remove", "CP-LOCKED", "--config", toml)
        assert configured.code == 1
        assert configured.stderr.startswith("error: CP-LOCKED is configured in the site file")


def test_registry_changes_check_their_rules(tmp_path: Path) -> None:
    config = make_config(tmp_path, ocpp={"auto_register": False})
    conn = connect_store(tmp_path / "edge.sqlite3")
    migrate(conn)
    now = datetime.now(UTC)
    changes: list[tuple[Callable[[], object], str]] = [
        (lambda: chargers.approve(Unit(), conn, config, "CP:1", now), "A-Z a-z 0-9"),
        (lambda: chargers.approve(Unit(), conn, config, "cp-locked", now), "in the site file"),
        (lambda: chargers.remove(Unit(), conn, config, "CP-NEVER"), "no registered charger"),
        (lambda: chargers.revoke(Unit(), conn, config, "CP-NEVER"), "no registered charger"),
    ]
    for change, problem in changes:
        with pytest.raises(chargers.ChargerError, match=problem):
            change()
    unit = Unit()
    assert chargers.approve(unit, conn, config, "CP-NEW", now) == "CP-NEW"
    for sql, params in unit.ops:
        conn.execute(sql, params)
    registered = chargers.find(conn, "cp-new")
    assert registered is not None
    assert registered.approved
    assert chargers.admit(config, ChargerId("cp-new"), registered) == chargers.Admitted(
        ChargerId("CP-NEW"), None, configured=False
    )
    unit = Unit()
    chargers.revoke(unit, conn, config, "CP-NEW")
    for sql, params in unit.ops:
        conn.execute(sql, params)
    registered = chargers.find(conn, "CP-NEW")
    assert chargers.admit(config, ChargerId("CP-NEW"), registered) is chargers.Refusal.UNKNOWN


async def test_in_production_an_approved_charger_needs_a_certificate(
    tmp_path: Path,
) -> None:
    config = make_config(
        tmp_path / "data",
        site={"id": "test-site", "environment": "production"},
        ocpp={"auto_register": False, "registry_refresh": 0.1},
    )
    toml = str(site_file(tmp_path, config))
    async with EdgeDaemon(config) as daemon:
        ran = await run_evpark_async("chargers", "approve", "CP-NEW", "--config", toml)
        assert ran.code == 0, ran.stderr
        assert "client certificate" in ran.stderr
        statuses: list[int] = []

        async def approval_seen() -> bool:
            statuses.append((await refused(daemon, "CP-NEW")).response.status_code)
            return statuses[-1] != 404

        await eventually(approval_seen, "the approval reached the daemon")
        assert statuses[-1] == 403
        await boots(daemon, "CP-LOCKED", password=PASSWORD)


# --- a second connection with the same id ----------------------------------------------


@asynccontextmanager
async def daemon_with(
    config_factory: Callable[..., SiteConfig], mode: str
) -> AsyncIterator[EdgeDaemon]:
    config = config_factory(ocpp={"replace_connection": mode, "duplicate_probe_timeout": 0.5})
    async with EdgeDaemon(config) as daemon:
        yield daemon


async def test_newest_replaces_the_connection(config_factory: Callable[..., SiteConfig]) -> None:
    async with (
        daemon_with(config_factory, "newest") as daemon,
        connect(daemon, "CP-DUP") as first,
    ):
        await first.send(BOOT_16)
        await first.recv()
        async with connect(daemon, "CP-DUP") as second:
            await second.send(BOOT_16)
            assert '"Accepted"' in str(await second.recv())
            with pytest.raises(ConnectionClosed) as closed:
                await first.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4000
        duplicates = "evpark_ocpp_duplicate_connections_total"
        assert metric(daemon, duplicates, outcome="replaced") == 1


async def test_reject_refuses_the_second_connection(
    config_factory: Callable[..., SiteConfig],
) -> None:
    async with (
        daemon_with(config_factory, "reject") as daemon,
        connect(daemon, "CP-DUP") as first,
    ):
        await first.send(BOOT_16)
        await first.recv()
        assert (await refused(daemon, "CP-DUP")).response.status_code == 409
        await first.send(HEARTBEAT_16)
        assert "currentTime" in str(await first.recv())
        duplicates = "evpark_ocpp_duplicate_connections_total"
        assert metric(daemon, duplicates, outcome="refused") == 1


async def test_oldest_keeps_a_live_connection(config_factory: Callable[..., SiteConfig]) -> None:
    async with (
        daemon_with(config_factory, "oldest") as daemon,
        connect(daemon, "CP-DUP") as first,
    ):
        await first.send(BOOT_16)
        await first.recv()
        answer = await refused(daemon, "CP-DUP")
        assert answer.response.status_code == 409
        assert answer.response.headers["Retry-After"] == "1"
        await asyncio.sleep(1.0)  # longer than the probe's deadline: the old one answered it
        assert (await refused(daemon, "CP-DUP")).response.status_code == 409
        await first.send(HEARTBEAT_16)
        assert "currentTime" in str(await first.recv())


async def test_oldest_lets_the_newcomer_in_when_the_old_connection_is_dead(
    config_factory: Callable[..., SiteConfig],
) -> None:
    async with daemon_with(config_factory, "oldest") as daemon:
        # a connection that went quiet (a half-open TCP connection): it never answers pings
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.ocpp_port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ocpp/CP-DUP HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n".encode()
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")

        async def connected() -> bool:
            return "CP-DUP" in daemon.ocpp.connections

        await eventually(connected, "the first connection is served")
        assert (await refused(daemon, "CP-DUP")).response.status_code == 409
        await eventually_boots(daemon, "CP-DUP")
        async with asyncio.timeout(10):
            while await reader.read(4096):  # the dead connection was closed by the daemon
                pass
        writer.close()
        duplicates = "evpark_ocpp_duplicate_connections_total"
        assert metric(daemon, duplicates, outcome="probed") >= 1


async def test_in_production_with_client_certificates_only_approved_ids_connect(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    files = {name: tmp_path / f"{name}.pem" for name in ("cert", "key", "ca")}
    server.private_key_and_cert_chain_pem.write_to_path(str(files["cert"]))
    server.private_key_pem.write_to_path(str(files["key"]))
    ca.cert_pem.write_to_path(str(files["ca"]))
    tls = {"cert_file": files["cert"], "key_file": files["key"], "client_ca_file": files["ca"]}
    config = make_config(
        tmp_path / "data",
        site={"id": "test-site", "environment": "production"},
        ocpp={"auto_register": False, "tls": tls},
        chargers=[],
    )
    (tmp_path / "data").mkdir()
    conn = connect_store(database_path(config))  # approved before the daemon starts
    migrate(conn)
    unit = Unit()
    chargers.approve(unit, conn, config, "CP-CERT-1", datetime.now(UTC))
    for sql, params in unit.ops:
        conn.execute(sql, params)
    conn.close()

    def client_tls(name: str) -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        ca.issue_cert(name, common_name=name).configure_cert(context)
        return context

    async with EdgeDaemon(config) as daemon:
        url = f"wss://127.0.0.1:{daemon.ocpp_port}/ocpp"
        async with websockets.connect(
            f"{url}/CP-CERT-1",
            ssl=client_tls("CP-CERT-1"),
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        ) as ws:
            await ws.send(BOOT_16)
            assert '"Accepted"' in str(await ws.recv())
        # a valid certificate is not enough: the id has to be approved (or configured)
        with pytest.raises(InvalidStatus) as refusal:
            await websockets.connect(
                f"{url}/CP-CERT-2",
                ssl=client_tls("CP-CERT-2"),
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            )
        assert refusal.value.response.status_code == 404
