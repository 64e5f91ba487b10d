"""The daemon as users run it: `evpark edge run` in its own process, SIGTERM and SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from ocpp_handlers.schemas import Version
from tests.harness.ports import free_port
from tests.harness.processes import edge_run_command, run_evpark
from tests.harness.site_config import write_site_toml
from tests.ocpp_client import RawCharger
from tests.ocpp_flows import flow_for

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def write_config(path: Path, ocpp_port: int, http_port: int) -> Path:
    return write_site_toml(
        path,
        {
            "site": {"id": "proc-site", "environment": "development"},
            "ocpp": {"port": ocpp_port, "auto_register": True},
            "http": {"port": http_port},
            "authorization": {"id_tags": ["TAG-OK"]},
        },
    )


@asynccontextmanager
async def running_edge(config: Path, data_dir: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
        edge_run_command(config, data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        assert process.stderr is not None
        process.stderr.close()


async def wait_healthy(http_port: int) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"http://127.0.0.1:{http_port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the daemon did not become healthy")


async def test_sigterm_stops_gracefully_and_sigkill_loses_nothing_committed(tmp_path: Path) -> None:
    ocpp_port, http_port = free_port(), free_port()
    config = write_config(tmp_path / "site.toml", ocpp_port, http_port)
    data = tmp_path / "data"
    url = f"ws://127.0.0.1:{ocpp_port}/ocpp"

    async with running_edge(config, data) as edge:
        await wait_healthy(http_port)
        async with RawCharger(url, "CP-PROC", Version.V16) as charger:
            flow = flow_for(charger)
            await flow.boot()
            tx = await flow.start(1, "TAG-OK", 0, T0)
            await flow.meter(1, tx, 700, "Wh", T0 + timedelta(minutes=5))
        edge.send_signal(signal.SIGTERM)
        assert edge.wait(15) == 0
        assert edge.stderr is not None
        logged = edge.stderr.read()
        assert b"edge.stopped" in logged
        assert b'"event_loop": "uvloop"' in logged  # the default, uvloop being installed

    async with running_edge(config, data) as edge:
        await wait_healthy(http_port)
        async with RawCharger(url, "CP-PROC", Version.V16) as charger:
            # every CALLRESULT the charger got was for a committed write: SIGKILL right after
            await flow_for(charger).meter(1, tx, 900, "Wh", T0 + timedelta(minutes=6))
            os.kill(edge.pid, signal.SIGKILL)
            edge.wait(10)

    async with running_edge(config, data) as edge:
        await wait_healthy(http_port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as api:
            active = (await api.get("/api/sessions", params={"status": "active"})).json()
    assert [(s["transaction_id"], s["energy_wh"]) for s in active] == [(tx, 900.0)]


def test_config_check_reports_each_mistake(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[site]\nid = "bad site"\n[ocpp]\nheartbeat_interval = 5\n'
        '[[slots]]\nid = "A1"\ntype = "ev"\n[[chargers]]\nid = "CP-1"\n[[chargers]]\nid = "CP-1"\n'
    )
    result = run_evpark("config", "check", str(bad))
    assert result.code == 1
    assert "site.id:" in result.stderr
    assert "ocpp.heartbeat_interval:" in result.stderr
    assert "slots.0: an EV slot needs `charger` and `evse`" in result.stderr

    broken = tmp_path / "broken.toml"
    broken.write_text("[site\nid=1")
    result = run_evpark("config", "check", str(broken))
    assert result.code == 1
    assert "toml:" in result.stderr

    example = Path(__file__).parents[2] / "config" / "site.example.toml"
    result = run_evpark("config", "check", str(example))
    assert result.code == 0, result.stderr
    assert "ok (site demo-site" in result.stdout


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    from edge.config import load_site_config

    config = write_config(tmp_path / "site.toml", 9100, 9101)
    os.environ["EVPARK_OCPP__PORT"] = "9200"
    try:
        assert load_site_config(config).ocpp.port == 9200
    finally:
        del os.environ["EVPARK_OCPP__PORT"]
    assert load_site_config(config).ocpp.port == 9100
