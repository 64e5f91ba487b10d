"""`evpark demo`: a whole simulated site on this machine, and where to look at it.

It brings up every part as a real user would, so it lives with the product CLI (not in the
simulator, which talks to the edge only over OCPP and MQTT).

The edge daemon runs as its own process (`evpark edge run`) from a site configuration
written here; the simulated chargers talk to it over websockets, like hardware would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import structlog

from edge.config import load_site_config
from sim.charger import SimCharger, SimChargerConfig
from sim.charger.fleet import FleetOptions, fleet_configs
from sim.sensors import SensorField
from sim.vehicles import EvBay, VehicleScenario

log = structlog.get_logger("evpark.demo")

SITE_ID = "demo-site"
SPEED = 60.0  # simulated seconds per wall second
# The site's broker: one already running there is used, else the edge embeds one.
MQTT_PORT = 1883
ID_TAGS = ("DEMO-TAG-1", "DEMO-TAG-2", "DEMO-TAG-3", "FLEET-0001")
# Two chargers the site knows with passwords (security profile 1), one per version.
NAMED_CHARGERS = (("CP-1", "1.6", "demo-password-1"), ("CP-2", "2.0.1", "demo-password-2"))


@dataclass(frozen=True)
class DemoPorts:
    ocpp: int
    http: int
    mqtt: int
    central: int


def _port(preferred: int) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def site_config(ports: DemoPorts, data_dir: Path) -> str:
    chargers = "\n".join(
        f'[[chargers]]\nid = "{cid}"\npassword = "{password}"\ndescription = "OCPP {version}"\n'
        for cid, version, password in NAMED_CHARGERS
    )
    tags = ", ".join(f'"{tag}"' for tag in ID_TAGS)
    return f"""# written by `evpark demo`
[site]
id = "{SITE_ID}"
name = "evpark demo car park"
environment = "development"

[ocpp]
host = "127.0.0.1"
port = {ports.ocpp}
auto_register = true
heartbeat_interval = 60
ping_interval = 20

[http]
host = "127.0.0.1"
port = {ports.http}

[central]
url = "http://127.0.0.1:{ports.central}"
batch_interval = 0.5
# the site key comes from EVPARK_CENTRAL__SITE_KEY

[mqtt]
url = "mqtt://127.0.0.1:{ports.mqtt}"
embedded = true      # the edge runs a broker when none listens there

[slot_timing]
debounce = 2
ev_slot_blocked_after = 30
charged_idle_after = 30
sensor_suspect_after = 30

[storage]
data_dir = "{data_dir.as_posix()}"

[authorization]
id_tags = [{tags}]

{chargers}
[[slots]]
id = "A1"
type = "ev"
sensor = "S-A1"
charger = "CP-1"
evse = 1

[[slots]]
id = "A2"
type = "ev"
sensor = "S-A2"
charger = "CP-2"
evse = 1

[[slots]]
id = "B1"
sensor = "S-B1"

[[slots]]
id = "B2"
sensor = "S-B2"

[[slots]]
id = "B3"
type = "accessible"
sensor = "S-B3"
"""


def demo_chargers(url: str, extra_per_version: int) -> list[SimChargerConfig]:
    named = fleet_configs(
        FleetOptions(url=url, ids=("CP-1",), version="1.6", password="demo-password-1", seed=11)
    ) + fleet_configs(
        FleetOptions(url=url, ids=("CP-2",), version="2.0.1", password="demo-password-2", seed=12)
    )
    extra = (
        fleet_configs(
            FleetOptions(
                url=url, count=2 * extra_per_version, version="mixed", prefix="SIM", seed=13
            )
        )
        if extra_per_version
        else []
    )
    common = {"speed": SPEED, "meter_interval": 5.0, "id_tags": ID_TAGS}
    # the chargers of the EV slots follow the cars of the vehicle scenario
    return [_with(c, drive=False, **common) for c in named] + [
        _with(c, drive=True, **common) for c in extra
    ]


def _with(config: SimChargerConfig, **changes: object) -> SimChargerConfig:
    return replace(config, **changes)  # type: ignore[arg-type]


def banner(
    ports: DemoPorts,
    data_dir: Path,
    chargers: int,
    driver_key: str,
    operator_key: str,
    ui_password: str,
) -> str:
    http = f"http://127.0.0.1:{ports.http}"
    central = f"http://127.0.0.1:{ports.central}"
    return f"""
evpark demo is running: site {SITE_ID!r} with {chargers} simulated chargers (OCPP 1.6J and
2.0.1), occupancy sensors and cars coming and going; its edge reports to central.

The site (edge daemon, local API and technician UI)
  technician UI             {http}/   user demo, password {ui_password}
  slots and free counts     {http}/api/slots   {http}/api/site/summary
  chargers and their state  {http}/api/chargers
  live and recent sessions  {http}/api/sessions?status=active
  health / metrics          {http}/healthz   {http}/metrics   (API docs: {http}/docs)
  OCPP endpoint             ws://127.0.0.1:{ports.ocpp}/ocpp/<charge point id>
  MQTT slot states          mosquitto_sub -h 127.0.0.1 -p {ports.mqtt} -t 'evpark/{SITE_ID}/#' -v

Central (gateway, API docs at {central}/docs)
  export DRIVER='Authorization: Bearer {driver_key}'
  export OPERATOR='Authorization: Bearer {operator_key}'
  start charging on CP-1    curl -X POST '{central}/charging/start?wait=5' -H "$DRIVER" \\
                              -H 'content-type: application/json' \\
                              -d '{{"site_id": "{SITE_ID}", "charger_id": "CP-1", "vehicle_id": "EV-1", "id_tag": "DEMO-TAG-1"}}'
                            (the answer is the charger's own: Rejected while a car charges there)
  its status                curl '{central}/charging/status/EV-1' -H "$DRIVER"
  reserve a slot            curl -X POST {central}/parking/reserve -H "$DRIVER" -H 'content-type: application/json' \\
                              -d '{{"site_id": "{SITE_ID}", "slot_type": "standard", "vehicle_id": "CAR-7", "duration_minutes": 60}}'
  the site seen from afar   curl '{central}/parking/status?site_id={SITE_ID}' -H "$DRIVER"
  usage and health          curl '{central}/analytics/usage' -H "$OPERATOR"   curl '{central}/metrics/health' -H "$OPERATOR"

Data and logs: {data_dir}   Ctrl-C stops everything (sessions are stopped cleanly first).
"""


async def _wait_healthy(url: str, process: asyncio.subprocess.Process, what: str) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(300):
            if process.returncode is not None:
                raise RuntimeError(f"the {what} exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the {what} did not become healthy in 30 s")


@contextlib.asynccontextmanager
async def _process(
    log_path: Path, *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m evpark <args>`` for the demo's lifetime; SIGTERM (then SIGKILL) at the end."""
    with log_path.open("ab") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "evpark", *args, stdout=log_file, stderr=log_file,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        try:
            yield process
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _evpark(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "evpark", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, **(env or {})},
    )  # fmt: skip
    out, _ = await process.communicate(stdin.encode() if stdin is not None else None)
    return process.returncode or 0, out.decode()


async def _ui_user(config_file: Path, env: dict[str, str]) -> str:
    """A `demo` admin for the technician UI, with a new password each run."""
    password = secrets.token_urlsafe(9)
    common = ("--config", str(config_file), "--username", "demo", "--password-stdin")
    code, _ = await _evpark(
        "users", "create", *common, "--role", "admin", stdin=password + "\n", env=env
    )
    if code != 0:  # the user exists from an earlier run
        code, out = await _evpark("users", "passwd", *common, stdin=password + "\n", env=env)
        if code != 0:
            raise RuntimeError(f"could not set up the demo UI user: {out[-500:]}")
    return password


async def _key(central_dir: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "evpark", "central", "keys", "create", "--data-dir", str(central_dir),
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"could not create a central API key: {err.decode()[-500:]}")
    return out.decode().strip().splitlines()[-1]


def _prepare(data_dir: Path) -> tuple[DemoPorts, Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = DemoPorts(ocpp=_port(9000), http=_port(8080), mqtt=MQTT_PORT, central=_port(8000))
    config_file = data_dir / "site.toml"
    config_file.write_text(site_config(ports, data_dir))
    return ports, config_file


async def _run(data_dir: Path, chargers_per_version: int, duration: float | None) -> None:
    ports, config_file = _prepare(data_dir)
    central_dir = data_dir / "central"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)

    site_key = await _key(central_dir, "--scope", "site", "--site", SITE_ID, "--name", "demo")
    driver_key = await _key(
        central_dir, "--scope", "driver", "--user", "demo-driver", "--vehicle", "EV-1",
        "--vehicle", "CAR-7", "--name", "demo driver",
    )  # fmt: skip
    operator_key = await _key(central_dir, "--scope", "operator", "--name", "demo operator")
    # the demo's own processes (and this one, which reads the site config) use the key
    os.environ["EVPARK_CENTRAL__SITE_KEY"] = site_key
    site_env = {"EVPARK_CENTRAL__SITE_KEY": site_key}
    ui_password = await _ui_user(config_file, site_env)
    async with contextlib.AsyncExitStack() as stack:
        central = await stack.enter_async_context(
            _process(
                data_dir / "central.log", "central", "run", "--data-dir", str(central_dir),
                "--port", str(ports.central), "--log-format", "json",
            )
        )  # fmt: skip
        await _wait_healthy(f"http://127.0.0.1:{ports.central}", central, "central service")
        edge = await stack.enter_async_context(
            _process(
                data_dir / "edge.log", "edge", "run", "--config", str(config_file),
                "--log-format", "json", env=site_env,
            )
        )  # fmt: skip
        await _wait_healthy(f"http://127.0.0.1:{ports.http}", edge, "edge daemon")
        configs = demo_chargers(f"ws://127.0.0.1:{ports.ocpp}/ocpp", chargers_per_version)
        sys.stdout.write(
            banner(ports, data_dir, len(configs), driver_key, operator_key, ui_password)
        )
        sys.stdout.flush()
        await _simulate_site(config_file, configs, stop)
    log.info("demo.stopped")


async def _simulate_site(
    config_file: Path, configs: list[SimChargerConfig], stop: asyncio.Event
) -> None:
    """Chargers, sensors and vehicles until ``stop``; then sessions end cleanly."""
    config = load_site_config(config_file)
    chargers = {c.charge_point_id: SimCharger(c) for c in configs}
    bays = [
        EvBay(slot.id, chargers[slot.charger], slot.evse or 1)
        for slot in config.slots
        if slot.charger in chargers
    ]
    field = SensorField.from_config(config, speed=SPEED, seed=7)
    scenario = VehicleScenario(field, bays, speed=SPEED, seed=8)
    async with field, asyncio.TaskGroup() as group:
        runs = [group.create_task(c.run()) for c in chargers.values()]
        traffic = group.create_task(scenario.run())
        await stop.wait()
        traffic.cancel()
        for charger in chargers.values():
            charger.request_stop()
        await asyncio.wait(runs)


def run_demo(
    chargers_per_version: int = 2, data_dir: Path | None = None, duration: float | None = None
) -> None:
    asyncio.run(_run(data_dir or Path("data/demo").resolve(), chargers_per_version, duration))
