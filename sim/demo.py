"""`evpark demo`: a whole simulated site on this machine, and where to look at it.

The edge daemon runs as its own process (`evpark edge run`) from a site configuration
written here; the simulated chargers talk to it over websockets, like hardware would.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import structlog

from edge.config import load_site_config
from sim.charger import SimCharger
from sim.charger_fleet import FleetOptions, fleet_configs
from sim.charger_model import SimChargerConfig
from sim.sensors import SensorField
from sim.vehicles import EvBay, VehicleScenario

log = structlog.get_logger("sim.demo")

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


def banner(ports: DemoPorts, data_dir: Path, chargers: int) -> str:
    http = f"http://127.0.0.1:{ports.http}"
    return f"""
evpark demo is running: site {SITE_ID!r} with {chargers} simulated chargers (OCPP 1.6J and 2.0.1).

  slots and free counts     {http}/api/slots   {http}/api/site/summary
  chargers and their state  {http}/api/chargers
  live and recent sessions  {http}/api/sessions?status=active   {http}/api/sessions
  health / metrics          {http}/healthz   {http}/metrics
  API documentation         {http}/docs
  OCPP endpoint             ws://127.0.0.1:{ports.ocpp}/ocpp/<charge point id>
  MQTT slot states          mosquitto_sub -h 127.0.0.1 -p {ports.mqtt} -t 'evpark/{SITE_ID}/#' -v
  try a command             curl -X POST {http}/api/chargers/CP-1/trigger \\
                              -H 'content-type: application/json' -d '{{"message": "Heartbeat"}}'
  data and logs             {data_dir}

Ctrl-C stops everything (sessions are stopped cleanly first).
"""


async def _wait_healthy(url: str, edge: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(300):
            if edge.returncode is not None:
                raise RuntimeError(f"the edge daemon exited with {edge.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the edge daemon did not become healthy in 30 s")


def _prepare(data_dir: Path) -> tuple[DemoPorts, Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = DemoPorts(ocpp=_port(9000), http=_port(8080), mqtt=MQTT_PORT)
    config_file = data_dir / "site.toml"
    config_file.write_text(site_config(ports, data_dir))
    return ports, config_file


async def _run(data_dir: Path, chargers_per_version: int, duration: float | None) -> None:
    ports, config_file = _prepare(data_dir)
    edge_log = data_dir / "edge.log"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)

    with edge_log.open("ab") as log_file:
        edge = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge", "edge", "run", "--config", str(config_file),
            "--log-format", "json",
            stdout=log_file, stderr=log_file,
        )  # fmt: skip
        try:
            await _wait_healthy(f"http://127.0.0.1:{ports.http}", edge)
            configs = demo_chargers(f"ws://127.0.0.1:{ports.ocpp}/ocpp", chargers_per_version)
            sys.stdout.write(banner(ports, data_dir, len(configs)))
            sys.stdout.flush()
            await _simulate_site(config_file, configs, stop)
        finally:
            if edge.returncode is None:
                edge.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(edge.wait(), 20)
                except TimeoutError:
                    edge.kill()
                    await edge.wait()
            log.info("demo.stopped", edge_exit=edge.returncode)


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
