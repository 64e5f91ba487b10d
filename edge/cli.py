"""The edge's commands: `evpark edge run` and `evpark config check`.

The product CLI (:mod:`evpark.cli`) mounts them; heavy imports happen inside the commands,
so `evpark --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import structlog
import typer

edge_app = typer.Typer(help="The per-site edge daemon.", no_args_is_help=True)
config_app = typer.Typer(help="Site configuration files.", no_args_is_help=True)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="site TOML file", envvar="EVPARK_CONFIG")
]


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="site TOML file")],
    data_dir: Annotated[
        Path | None,
        typer.Option(help="the data directory `edge run` will be given", envvar="EVPARK_DATA_DIR"),
    ] = None,
) -> None:
    """Check a site configuration and the files it names; print every mistake with its
    field, exit 1 if any."""
    from edge.config import ConfigError, load_site_config
    from edge.startup import file_problems

    try:
        config = load_site_config(file)
    except ConfigError as err:
        # the files its valid sections name are checked too: every problem in one run
        problems = err.problems + (file_problems(err.partial, data_dir) if err.partial else [])
    else:
        problems = file_problems(config, data_dir)  # the files it names, unopened by loading
    for field, message in problems:
        typer.echo(f"{file}: {field}: {message}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(
        f"{file}: ok (site {config.site.id}, {len(config.chargers)} chargers, "
        f"{len(config.slots)} slots)"
    )


@edge_app.command("run")
def edge_run(
    config: ConfigOption,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="where the SQLite database lives", envvar="EVPARK_DATA_DIR"),
    ] = None,
    mqtt_url: Annotated[
        str | None, typer.Option(help="MQTT broker, mqtt://host:port (overrides the config)")
    ] = None,
    central_url: Annotated[
        str | None, typer.Option(help="central's URL (overrides the config)")
    ] = None,
    log_format: Annotated[
        str, typer.Option(help="auto, console or json", envvar="EVPARK_LOG_FORMAT")
    ] = "auto",
) -> None:
    """Run the edge daemon for one site until SIGTERM or Ctrl-C."""
    from common.logs import configure_logging
    from edge.config import ConfigError, load_site_config
    from edge.daemon import run_daemon
    from edge.event_loop import EventLoopUnavailable
    from edge.startup import StartupError

    overrides: dict[str, object] = {}
    try:
        site_config = load_site_config(config)
    except ConfigError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    if data_dir is not None:
        overrides["storage"] = site_config.storage.model_copy(update={"data_dir": data_dir})
    if mqtt_url is not None:
        overrides["mqtt"] = site_config.mqtt.model_copy(update={"url": mqtt_url})
    if central_url is not None:
        overrides["central"] = site_config.central.model_copy(update={"url": central_url})
    site_config = site_config.model_copy(update=overrides)
    if site_config.central.url and not site_config.central.site_key:
        typer.echo(
            "--central-url needs a site key: set EVPARK_CENTRAL__SITE_KEY "
            "(evpark central keys create --scope site --site ID)",
            err=True,
        )
        raise typer.Exit(2)
    configure_logging(log_format)
    try:
        run_daemon(site_config)
    except EventLoopUnavailable as err:
        typer.echo(f"runtime.event_loop: {err}", err=True)
        raise typer.Exit(2) from err
    except StartupError as err:
        structlog.get_logger("edge.cli").error("edge.start.failed", error=str(err))
        raise typer.Exit(1) from err
