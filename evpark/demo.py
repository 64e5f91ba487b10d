"""`evpark demo`: a whole simulated site on this machine, and where to look at it.

It brings up every part as a real user would, so it lives with the product CLI (not in the
simulator, which talks to the edge only over OCPP and MQTT).

Central and the edge daemon run as their own processes (`evpark central run`, `evpark edge
run` from a site configuration written by :mod:`evpark.demo_site`); the simulated chargers
talk to the edge over websockets, like hardware would. Central sends email to a mail sink
in this process (:mod:`evpark.mail_sink`), which prints each message; the demo sets the
site's rates and a demo driver up, and that driver visits its bay now and then
(:mod:`evpark.demo_driver`), so there is always something to be told and to be paid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import structlog

from edge.config import load_site_config
from evpark.demo_driver import (
    ANSWER_WAIT_S,
    DRIVER_EMAIL,
    DRIVER_ID,
    DRIVER_VEHICLE,
    DemoKeys,
    DriverVisits,
    revenue_line,
    set_up_site_and_driver,
)
from evpark.demo_site import (
    DRIVER_CHARGER,
    DRIVER_SENSOR,
    DRIVER_SLOT,
    SITE_ID,
    SPEED,
    DemoPorts,
    demo_chargers,
    demo_ports,
    site_config,
)
from evpark.mail_sink import MailSink
from sim.charger import SimCharger, SimChargerConfig
from sim.sensors import SensorField
from sim.vehicles import EvBay, VehicleScenario

log = structlog.get_logger("evpark.demo")

# central's SMTP settings (central.notification.settings) through its environment
SMTP_ENV = "EVPARK_CENTRAL_NOTIFICATION__SMTP__"
# wall seconds: the edge's batches and central's consumers settle before the summary
SETTLE_S = 3.0


def say(line: str) -> None:
    """One line on the demo's output, at once (the demo's own log goes to stderr)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def banner(
    ports: DemoPorts,
    data_dir: Path,
    chargers: int,
    keys: DemoKeys,
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
  export DRIVER='Authorization: Bearer {keys.driver}'
  export OPERATOR='Authorization: Bearer {keys.operator}'
  start charging on CP-1    curl -X POST '{central}/charging/start?wait=30' -H "$DRIVER" \\
                              -H 'content-type: application/json' \\
                              -d '{{"site_id": "{SITE_ID}", "charger_id": "CP-1", "vehicle_id": "{DRIVER_VEHICLE}"}}'
                            (accepted once the session began; Rejected while a car charges there)
  its status                curl '{central}/charging/status/{DRIVER_VEHICLE}' -H "$DRIVER"
  reserve a slot            curl -X POST {central}/parking/reserve -H "$DRIVER" -H 'content-type: application/json' \\
                              -d '{{"site_id": "{SITE_ID}", "slot_type": "standard", "vehicle_id": "CAR-7", "duration_minutes": 60}}'
  the site seen from afar   curl '{central}/parking/status?site_id={SITE_ID}' -H "$DRIVER"
  the driver's messages     curl '{central}/notifications/users/{DRIVER_ID}' -H "$DRIVER"
  usage, revenue, health    curl '{central}/analytics/usage' -H "$OPERATOR"   curl '{central}/analytics/revenue' -H "$OPERATOR"
                            curl '{central}/metrics/health' -H "$OPERATOR"

The demo driver ({DRIVER_ID}, {DRIVER_EMAIL}) reserves slot {DRIVER_SLOT}, arrives, charges
at {DRIVER_CHARGER} from the app and leaves, every few minutes. Its email goes to a local
SMTP sink (127.0.0.1:{ports.smtp}): each message is shown below as "mail to ...: <subject>",
and kept whole in {data_dir / "mail.log"}.

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
    ports = demo_ports()
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

    site_key = await _key(central_dir, "--scope", "site", "--site", SITE_ID, "--name", "demo")
    driver_key = await _key(
        central_dir, "--scope", "driver", "--user", DRIVER_ID, "--vehicle", DRIVER_VEHICLE,
        "--vehicle", "CAR-7", "--name", "demo driver",
    )  # fmt: skip
    operator_key = await _key(central_dir, "--scope", "operator", "--name", "demo operator")
    keys = DemoKeys(driver=driver_key, operator=operator_key)
    # the demo's own processes (and this one, which reads the site config) use the key
    os.environ["EVPARK_CENTRAL__SITE_KEY"] = site_key
    site_env = {"EVPARK_CENTRAL__SITE_KEY": site_key}
    central_env = {f"{SMTP_ENV}HOST": "127.0.0.1", f"{SMTP_ENV}PORT": str(ports.smtp)}
    ui_password = await _ui_user(config_file, site_env)
    central_url = f"http://127.0.0.1:{ports.central}"
    async with contextlib.AsyncExitStack() as stack:
        mail = stack.enter_context(MailSink(ports.smtp, data_dir / "mail.log", say))
        central = await stack.enter_async_context(
            _process(
                data_dir / "central.log", "central", "run", "--data-dir", str(central_dir),
                "--port", str(ports.central), "--log-format", "json", env=central_env,
            )
        )  # fmt: skip
        await _wait_healthy(central_url, central, "central service")
        client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=central_url, timeout=ANSWER_WAIT_S + 10)
        )
        await set_up_site_and_driver(client, keys, say)
        edge = await stack.enter_async_context(
            _process(
                data_dir / "edge.log", "edge", "run", "--config", str(config_file),
                "--log-format", "json", env=site_env,
            )
        )  # fmt: skip
        await _wait_healthy(f"http://127.0.0.1:{ports.http}", edge, "edge daemon")
        configs = demo_chargers(f"ws://127.0.0.1:{ports.ocpp}/ocpp", chargers_per_version)
        say(banner(ports, data_dir, len(configs), keys, ui_password))
        if duration is not None:  # the site's running time, however long starting took
            loop.call_later(duration, stop.set)
        await _simulate_site(config_file, configs, stop, client, keys)
        await asyncio.sleep(SETTLE_S)
        say(await revenue_line(client, keys))
        say(f"{len(mail.received)} emails reached the demo's mail sink ({mail.log_file})")
    log.info("demo.stopped")


async def _simulate_site(
    config_file: Path,
    configs: list[SimChargerConfig],
    stop: asyncio.Event,
    client: httpx.AsyncClient,
    keys: DemoKeys,
) -> None:
    """Chargers, sensors, random cars and the demo driver until ``stop``; then sessions
    end cleanly."""
    config = load_site_config(config_file)
    chargers = {c.charge_point_id: SimCharger(c) for c in configs}
    # the demo driver's bay is its own: random cars and sensor noise stay away from it
    scenario_slots = [slot for slot in config.slots if slot.id != DRIVER_SLOT]
    bays = [
        EvBay(slot.id, chargers[slot.charger], slot.evse or 1)
        for slot in scenario_slots
        if slot.charger in chargers
    ]
    field = SensorField.from_config(
        config.model_copy(update={"slots": scenario_slots}), speed=SPEED, seed=7
    )
    driver_bay = SensorField(
        SITE_ID, {DRIVER_SLOT: DRIVER_SENSOR}, config.mqtt.url, speed=SPEED, seed=9,
        username=config.mqtt.username, password=config.mqtt.password,
    )  # fmt: skip
    scenario = VehicleScenario(field, bays, speed=SPEED, seed=8)
    driver = DriverVisits(client, keys, chargers[DRIVER_CHARGER], driver_bay, say)
    async with field, driver_bay, asyncio.TaskGroup() as group:
        runs = [group.create_task(c.run()) for c in chargers.values()]
        traffic = [group.create_task(scenario.run()), group.create_task(driver.run())]
        await stop.wait()
        for task in traffic:
            task.cancel()
        for charger in chargers.values():
            charger.request_stop()
        await asyncio.wait(runs)


def run_demo(
    chargers_per_version: int = 2, data_dir: Path | None = None, duration: float | None = None
) -> None:
    asyncio.run(_run(data_dir or Path("data/demo").resolve(), chargers_per_version, duration))
