"""The daemons under the units' syscall filter, address families, NoNewPrivileges and
MemoryDenyWriteExecute (tests/systemd/sandbox.py applies them without systemd): the edge
serves a charger's boot and a login (argon2 through cffi) and stops cleanly; central
starts and answers. A call the filter refuses would fail them (EPERM), a write+execute
mapping too."""

from __future__ import annotations

import ctypes.util
import json
import platform
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.harness.ports import free_port
from tests.harness.processes import (
    DaemonProcess,
    central_run_command,
    edge_run_command,
    evpark_command,
)
from tests.harness.site_config import write_site_toml
from tests.services import missing, require_binary

SANDBOX = [sys.executable, str(Path(__file__).with_name("sandbox.py"))]
PASSWORD = "a long enough password"


@pytest.fixture(autouse=True)
def _what_the_sandbox_needs() -> None:
    require_binary("systemd-analyze")  # the filter's groups are systemd's
    if ctypes.util.find_library("seccomp") is None:
        missing("libseccomp")
    if tuple(int(part) for part in platform.release().split(".")[:2]) < (6, 3):
        missing("Linux 6.3 or later (PR_SET_MDWE)")


def sandboxed(command: list[str]) -> list[str]:
    return [*SANDBOX, *command]


def _status(pid: int | None) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def test_the_sandbox_refuses_what_the_units_refuse() -> None:
    probe = (
        "import mmap, os, socket\n"
        "for what, call in [('wx', lambda: mmap.mmap(-1, 4096, prot=7)),\n"
        "                   ('setuid', lambda: os.setuid(os.getuid())),\n"
        "                   ('netlink', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW))]:\n"
        "    try:\n"
        "        call(); print(what, 'allowed')\n"
        "    except OSError as err:\n"
        "        print(what, err.errno)\n"
    )  # fmt: skip
    ran = subprocess.run(
        sandboxed([sys.executable, "-c", probe]), capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    # EACCES: a write+execute mapping (MDWE); EPERM: a @privileged call, a netlink socket
    assert ran.stdout.split("\n") == ["wx 13", "setuid 1", "netlink 1", ""]


def _edge_site(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    ports = {"ocpp": free_port(), "http": free_port()}
    config = write_site_toml(
        tmp_path / "site.toml",
        {
            "site": {"id": "sandboxed", "environment": "development"},
            "ocpp": {"host": "127.0.0.1", "port": ports["ocpp"], "auto_register": True},
            "http": {"host": "127.0.0.1", "port": ports["http"]},
            "mqtt": {"url": f"mqtt://127.0.0.1:{free_port()}"},  # no broker: not needed here
            "storage": {"data_dir": tmp_path / "edge"},
        },
    )
    return config, ports


def test_the_edge_works_in_the_sandbox(tmp_path: Path) -> None:
    config, ports = _edge_site(tmp_path)
    created = subprocess.run(
        sandboxed(evpark_command("users", "create", "--config", str(config),
                                 "--username", "tech", "--password-stdin")),
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    edge = DaemonProcess(
        "edge", sandboxed(edge_run_command(config, tmp_path / "edge")), tmp_path / "edge.log"
    )
    edge.start()
    try:
        base = f"http://127.0.0.1:{ports['http']}"
        edge.wait_healthy(f"{base}/healthz")
        status = _status(edge.pid)
        assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2")  # 2: a filter
        with connect(
            f"ws://127.0.0.1:{ports['ocpp']}/ocpp/CP-SANDBOX", subprotocols=["ocpp1.6"]
        ) as charger:
            boot = {"chargePointVendor": "evpark", "chargePointModel": "sandbox"}
            charger.send(json.dumps([2, "boot-1", "BootNotification", boot]))
            answer = json.loads(charger.recv(timeout=10))
        assert answer[:2] == [3, "boot-1"]
        assert answer[2]["status"] == "Accepted"
        with httpx.Client(base_url=base) as http:
            form = http.get("/login")
            token = form.text.split('name="login_token" value="')[1].split('"')[0]
            login = {"username": "tech", "password": PASSWORD, "login_token": token}
            assert http.post("/login", data=login).status_code == 303
    finally:
        assert edge.stop(within=20) == 0, edge.log_tail()


def test_central_works_in_the_sandbox(tmp_path: Path) -> None:
    port = free_port()
    central = DaemonProcess(
        "central", sandboxed(central_run_command(port)), tmp_path / "central.log",
        {"EVPARK_CENTRAL_DATA_DIR": str(tmp_path / "central")},
    )  # fmt: skip
    central.start()
    try:
        central.wait_healthy(f"http://127.0.0.1:{port}/healthz")
        assert _status(central.pid)["Seccomp"] == "2"
        rates = httpx.get(f"http://127.0.0.1:{port}/charging/rates", timeout=10)
        assert rates.status_code in (200, 401)  # through the gateway to the service
    finally:
        # uvicorn ends by raising the SIGTERM again: systemd counts that a clean stop
        assert central.stop(within=20) == -15, central.log_tail()
