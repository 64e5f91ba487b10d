"""Start-up as operators meet it: `evpark edge run` that cannot start says why in one log
line and exits 1; SIGTERM while it starts stops it; `config check` reports every problem in
one run, the files the config names included; `evpark --version`."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.harness.ports import free_port, listening
from tests.harness.processes import DaemonProcess, edge_run_command, run_evpark
from tests.harness.site_config import write_site_toml


def site(tmp_path: Path, ocpp_port: int, http_port: int, **extra: Any) -> Path:
    sections: dict[str, Any] = {
        "site": {"id": "start-site", "environment": "development"},
        "ocpp": {"port": ocpp_port, "auto_register": True},
        "http": {"port": http_port},
    }
    for section, values in extra.items():
        sections[section] = {**sections.get(section, {}), **values}
    return write_site_toml(tmp_path / "site.toml", sections)


@contextmanager
def taken(port: int) -> Iterator[None]:
    """Something else listens on ``port``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


def failed_start(tmp_path: Path, config: Path, data_dir: Path) -> str:
    """Run the edge, expect exit code 1, return its one log line."""
    ran = run_evpark(*edge_run_command(config, data_dir)[1:], within=30)
    assert ran.code == 1, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert "Traceback" not in ran.stderr
    assert len(lines) == 1, ran.stderr
    line = json.loads(lines[0])
    assert (line["event"], line["level"]) == ("edge.start.failed", "error")
    return str(line["error"])


@pytest.mark.parametrize("key", ["ocpp.port", "http.port"])
def test_a_taken_port_is_one_line_naming_its_key(tmp_path: Path, key: str) -> None:
    ocpp_port, http_port = free_port(), free_port()
    port = ocpp_port if key == "ocpp.port" else http_port
    with taken(port):
        error = failed_start(tmp_path, site(tmp_path, ocpp_port, http_port), tmp_path / "data")
    assert error == f"port {port} on 127.0.0.1 ({key}) is in use: stop what uses it or change {key}"


def test_missing_or_unreadable_tls_files_are_one_line(tmp_path: Path) -> None:
    tls = {"tls": {"cert_file": tmp_path / "missing.pem", "key_file": tmp_path}}
    config = site(tmp_path, free_port(), free_port(), ocpp=tls)
    error = failed_start(tmp_path, config, tmp_path / "data")
    assert f"ocpp.tls.cert_file: {tmp_path / 'missing.pem'}: No such file" in error
    assert f"ocpp.tls.key_file: {tmp_path}: Is a directory" in error


def test_a_data_dir_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = site(tmp_path, free_port(), free_port())
    error = failed_start(tmp_path, config, blocker / "data")
    assert error == f"storage.data_dir: {blocker / 'data'}: {blocker} is not a directory"


def test_a_database_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "edge.sqlite3").write_bytes(b"this is not an SQLite file, it is long enough" * 10)
    error = failed_start(tmp_path, site(tmp_path, free_port(), free_port()), data)
    assert error.startswith(f"database {data / 'edge.sqlite3'} (storage.data_dir) cannot be read")


@pytest.mark.parametrize("after", [0.0, 0.4, 0.8, 1.2])
def test_sigterm_while_starting_stops_it_and_loses_nothing(tmp_path: Path, after: float) -> None:
    """SIGTERM at several moments of the start (import, store, servers): it exits promptly,
    cleanly, and the next start finds its database whole."""
    ocpp_port, http_port = free_port(), free_port()
    config, data = site(tmp_path, ocpp_port, http_port), tmp_path / "data"
    edge = DaemonProcess("edge", edge_run_command(config, data), tmp_path / "edge.log")
    edge.start()
    time.sleep(after)  # a moment of the start, not a time asserted on
    code = edge.stop(within=10)
    assert code in (0, -signal.SIGTERM), edge.log_tail()  # None: it had to be killed
    log = edge.log.read_text()
    assert "Traceback" not in log
    if code == 0:  # it had installed its handler: it says how far it got
        assert "edge.start.abandoned" in log or "edge.stopped" in log, log

    again = DaemonProcess("edge", edge_run_command(config, data), tmp_path / "again.log")
    again.start()
    try:
        again.wait_healthy(f"http://127.0.0.1:{http_port}/healthz", within=30)
    finally:
        assert again.stop(within=15) == 0, again.log_tail()


def test_config_check_reports_every_problem_at_once(tmp_path: Path) -> None:
    config = write_site_toml(
        tmp_path / "site.toml",
        {
            "site": {"id": "check-site"},  # production
            "ocpp": {"auto_register": True, "tls": {"cert_file": tmp_path / "cert.pem",
                                                    "key_file": tmp_path / "key.pem"}},
            "http": {"port": 70000},  # a field error
            "mqtt": {"ca_file": tmp_path / "ca.pem"},
            "chargers": [{"id": "CP-1", "password": "changeme"}],
            "slots": [{"id": "A1", "type": "ev", "charger": "CP-9", "evse": 1}],
        },
    )  # fmt: skip
    ran = run_evpark("config", "check", str(config))
    assert ran.code == 1
    said = ran.stderr.splitlines()
    assert said == [
        f"{config}: http.port: Input should be less than or equal to 65535",
        f"{config}: (config): slot 'A1' names unknown charger 'CP-9'",
        f"{config}: (config): ocpp.auto_register admits any charger without credentials: it is "
        "refused in production (list the chargers under [[chargers]] with a password, or "
        "approve them with `evpark chargers approve`)",
        f"{config}: (config): charger 'CP-1' has a placeholder password",
        f"{config}: ocpp.tls.cert_file: {tmp_path / 'cert.pem'}: No such file or directory",
        f"{config}: ocpp.tls.key_file: {tmp_path / 'key.pem'}: No such file or directory",
        f"{config}: mqtt.ca_file: {tmp_path / 'ca.pem'}: No such file or directory",
    ]


def test_config_check_names_an_unknown_time_zone(tmp_path: Path) -> None:
    config = write_site_toml(
        tmp_path / "site.toml",
        {"site": {"id": "zone-site", "environment": "development", "timezone": "Europe/Berlni"}},
    )
    ran = run_evpark("config", "check", str(config))
    assert ran.code == 1
    assert ran.stderr.splitlines() == [
        f"{config}: site.timezone: unknown time zone 'Europe/Berlni': use an IANA name such as "
        "Europe/Berlin"
    ]


def test_config_check_loads_the_tls_pair(tmp_path: Path) -> None:
    """Files that exist but are no certificate and key are a problem too."""
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("not PEM\n")
    tls = {"tls": {"cert_file": tmp_path / "cert.pem", "key_file": tmp_path / "key.pem"}}
    ran = run_evpark("config", "check", str(site(tmp_path, 9000, 8080, ocpp=tls)))
    assert ran.code == 1
    assert "ocpp.tls: the certificate, key or CA do not load:" in ran.stderr


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    from importlib.metadata import version

    ran = run_evpark(flag)
    assert (ran.code, ran.stdout) == (0, f"evpark {version('evpark')}\n")


def test_config_check_checks_the_data_dir_it_is_given(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = site(tmp_path, 9000, 8080)
    ran = run_evpark("config", "check", str(config), "--data-dir", str(blocker / "data"))
    assert ran.code == 1
    assert ran.stderr == (
        f"{config}: storage.data_dir: {blocker / 'data'}: {blocker} is not a directory\n"
    )
    assert run_evpark("config", "check", str(config), "--data-dir", str(tmp_path / "d")).code == 0


def test_systemd_hears_ready_watchdog_pings_and_stopping(tmp_path: Path) -> None:
    """Type=notify with WatchdogSec: READY=1 once it serves, WATCHDOG=1 over and over,
    STOPPING=1 on SIGTERM; the test is systemd, a datagram socket."""
    ocpp_port, http_port = free_port(), free_port()
    config = site(tmp_path, ocpp_port, http_port)
    heard: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(tmp_path / "notify"))
        systemd.settimeout(30)
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "200000"}
        edge = DaemonProcess(
            "edge", edge_run_command(config, tmp_path / "data"), tmp_path / "edge.log", env
        )
        edge.start()
        try:
            heard.append(systemd.recv(64).decode())
            assert heard == ["READY=1"], edge.log_tail()
            assert listening("127.0.0.1", http_port)
            assert listening("127.0.0.1", ocpp_port)
            heard += [systemd.recv(64).decode() for _ in range(3)]
            assert heard[1:] == ["WATCHDOG=1"] * 3
        finally:
            code = edge.stop(within=15)
        assert code == 0, edge.log_tail()
        rest = []
        systemd.settimeout(0)
        with contextlib.suppress(BlockingIOError):
            while True:
                rest.append(systemd.recv(64).decode())
    assert "STOPPING=1" in rest
    assert set(rest) <= {"WATCHDOG=1", "STOPPING=1"}


@pytest.mark.parametrize("key", ["ocpp.port", "http.port"])
async def test_a_port_taken_after_the_preflight_is_a_startup_error(
    tmp_path: Path, key: str
) -> None:
    """The race the preflight cannot close: the daemon itself, its port taken, raises one
    StartupError naming the key (and what it opened is closed)."""
    from edge.daemon import EdgeDaemon
    from edge.startup import StartupError
    from tests.edge.conftest import make_config

    port = free_port()
    section = key.split(".")[0]
    config = make_config(tmp_path / "data", **{section: {"port": port}})
    with taken(port), pytest.raises(StartupError, match=rf"^{key}: cannot listen: "):
        async with EdgeDaemon(config):
            pass
