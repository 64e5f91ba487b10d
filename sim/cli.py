"""The `evpark sim ...` commands: `chargers` and `sensors`.

This module imports only typer at import time, so `evpark --help` stays fast; each
command imports the simulator's packages when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Simulated chargers, sensors and vehicles.", no_args_is_help=True)


@app.command("chargers")
def chargers(
    url: Annotated[
        str, typer.Option(help="the edge's OCPP base URL; chargers connect to <url>/<id>")
    ] = "ws://127.0.0.1:9000/ocpp",
    count: Annotated[int, typer.Option(min=1, help="number of chargers (ignored with --id)")] = 2,
    version: Annotated[str, typer.Option(help="1.6, 2.0.1 or mixed")] = "mixed",
    prefix: Annotated[str, typer.Option(help="charge point id prefix: <prefix>-16-001")] = "SIM",
    password: Annotated[
        str | None,
        typer.Option(help="HTTP Basic password (security profile 1)", envvar="EVPARK_SIM_PASSWORD"),
    ] = None,
    ca_file: Annotated[
        str | None, typer.Option(help="CA bundle for wss:// (security profiles 2 and 3)")
    ] = None,
    cert_file: Annotated[
        str | None, typer.Option(help="client certificate for wss:// (security profile 3)")
    ] = None,
    key_file: Annotated[str | None, typer.Option(help="the client certificate's key")] = None,
    charger_id: Annotated[
        list[str] | None, typer.Option("--id", help="simulate this charge point id (repeatable)")
    ] = None,
    id_tag: Annotated[
        list[str] | None, typer.Option("--id-tag", help="driver id tag (repeatable)")
    ] = None,
    speed: Annotated[
        float, typer.Option(min=0.001, help="simulated seconds per wall second")
    ] = 60.0,
    meter_interval: Annotated[
        float, typer.Option(min=0.1, help="wall seconds between meter values")
    ] = 10.0,
    seed: Annotated[int, typer.Option(help="seed of all randomness")] = 1,
    duration: Annotated[
        float | None, typer.Option(min=0.0, help="stop after this many seconds")
    ] = None,
    connectors: Annotated[int, typer.Option(min=1, max=8, help="connectors per charger")] = 1,
    curve: Annotated[str, typer.Option(help="ac or dc charging curve")] = "ac",
    power: Annotated[float, typer.Option(min=1.0, help="maximum power in kW")] = 11.0,
    tx_start_at_plug_in: Annotated[
        bool,
        typer.Option(
            help="2.0.1: start transactions at plug-in, the token following in an Updated "
            "(TxStartPoint EVConnected)"
        ),
    ] = False,
    log_format: Annotated[
        str, typer.Option(help="auto, console or json", envvar="EVPARK_LOG_FORMAT")
    ] = "auto",
) -> None:
    """Run simulated OCPP chargers against an edge until Ctrl-C/SIGTERM (or --duration):
    boot, status, plug-in, authorize, sessions with meter values, remote commands,
    reconnection with an offline queue. Sessions still running at the end are stopped."""
    import asyncio
    import signal

    from common.logs import configure_logging
    from sim.charger.fleet import FleetOptions, fleet_configs, run_fleet
    from sim.charger.model import DEFAULT_ID_TAGS

    if version not in ("1.6", "2.0.1", "mixed"):
        raise typer.BadParameter("--version must be 1.6, 2.0.1 or mixed")
    if curve not in ("ac", "dc"):
        raise typer.BadParameter("--curve must be ac or dc")
    options = FleetOptions(
        url=url,
        count=count,
        version=version,  # type: ignore[arg-type]
        prefix=prefix,
        password=password,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        ids=tuple(charger_id or ()),
        id_tags=tuple(id_tag or DEFAULT_ID_TAGS),
        speed=speed,
        meter_interval=meter_interval,
        seed=seed,
        connectors=connectors,
        curve=curve,  # type: ignore[arg-type]
        max_power_w=power * 1000.0,
        tx_start_at_plug_in=tx_start_at_plug_in,
    )
    configure_logging(log_format)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if duration is not None:
            loop.call_later(duration, stop.set)
        await run_fleet(fleet_configs(options), stop)

    asyncio.run(main())


@app.command("sensors")
def sensors(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="site TOML file", envvar="EVPARK_CONFIG")
    ],
    mqtt_url: Annotated[
        str | None,
        typer.Option(help="MQTT broker, mqtt://host:port (default: the config's [mqtt] url)"),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(min=0.001, help="time acceleration of arrivals, stays and outages"),
    ] = 1.0,
    seed: Annotated[int | None, typer.Option(help="random seed, for a repeatable run")] = None,
    duration: Annotated[
        float | None, typer.Option(min=0, help="stop after this many seconds (default: never)")
    ] = None,
    log_format: Annotated[
        str, typer.Option(help="auto, console or json", envvar="EVPARK_LOG_FORMAT")
    ] = "auto",
) -> None:
    """Publish simulated occupancy for the slots of a site that have a `sensor`.

    Realistic noise: readings flap when cars arrive and leave, sensors go offline (status
    topic and last will) and come back, some batteries are low. Stop with Ctrl-C.
    """
    import asyncio

    import aiomqtt

    from common.logs import configure_logging
    from sim.sensors.field import run_sensors
    from sim.sensors.site import SiteFileError, read_site_file

    try:
        site_config = read_site_file(config)
    except SiteFileError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    configure_logging(log_format)
    url = mqtt_url or site_config.mqtt.url
    try:
        asyncio.run(run_sensors(site_config, url=url, speed=speed, seed=seed, duration=duration))
    except* ValueError as group:  # a malformed --mqtt-url
        typer.echo(f"evpark sim sensors: {group.exceptions[0]}", err=True)
        raise typer.Exit(2) from group
    except* aiomqtt.MqttError as group:
        typer.echo(f"evpark sim sensors: MQTT broker {url}: {group.exceptions[0]}", err=True)
        raise typer.Exit(1) from group
