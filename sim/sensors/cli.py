"""`evpark sim sensors`: occupancy sensors for the slots of a site config, with noise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


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

    from sim.logs import configure_logging
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
