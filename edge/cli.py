"""The edge's commands: `evpark edge run`, `backup`, `restore` and `evpark config check`.

The product CLI (:mod:`evpark.cli`) mounts them; heavy imports happen inside the commands,
so `evpark --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import structlog
import typer

if TYPE_CHECKING:
    from edge.config import SiteConfig

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
            "--central-url needs a site key: set EVPARK_CENTRAL__SITE_KEY or the credential "
            "central__site_key (evpark central keys create --scope site --site ID)",
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


DataDirOption = Annotated[
    Path | None,
    typer.Option(help="where the SQLite database lives", envvar="EVPARK_DATA_DIR"),
]


def _site_config(config: Path, data_dir: Path | None) -> SiteConfig:
    from edge.config import ConfigError, load_site_config

    try:
        site = load_site_config(config)
    except ConfigError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    if data_dir is None:
        return site
    storage = site.storage.model_copy(update={"data_dir": data_dir})
    return site.model_copy(update={"storage": storage})


@edge_app.command("backup")
def edge_backup(
    config: ConfigOption,
    to: Annotated[Path, typer.Option("--to", help="the backup file to write")],
    data_dir: DataDirOption = None,
) -> None:
    """Back up the site's database, consistently, while the daemon runs."""
    import structlog

    from edge.storage.backup import BackupError, backup

    site = _site_config(config, data_dir)
    try:
        report = backup(site.storage.database, to)
    except (BackupError, OSError) as err:
        typer.echo(f"backup failed: {err}", err=True)
        raise typer.Exit(1) from err
    structlog.get_logger("edge.backup").info(
        "edge.backup", to=str(report.path), size=report.size, schema=report.schema,
        outbox_rows=report.outbox_rows, last_sequence=report.last_sequence,
    )  # fmt: skip
    typer.echo(
        f"{report.path}: {report.size} bytes, schema {report.schema}, "
        f"{report.outbox_rows} outbox events, last sequence {report.last_sequence} "
        f"(central had confirmed {report.acked_sequence})"
    )


@edge_app.command("restore")
def edge_restore(
    config: ConfigOption,
    source: Annotated[Path, typer.Option("--from", help="the backup file to restore")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    offline: Annotated[
        bool, typer.Option(help="restore without asking central where the site stands")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Restore a backup into the site's data dir (the daemon must be stopped)."""
    from datetime import UTC, datetime

    import structlog

    from edge.storage.backup import BackupError, inspect, restore

    site = _site_config(config, data_dir)
    try:
        found = inspect(source)
        central = None if offline else central_last_sequence(site)
        if not yes:
            typer.confirm(
                f"Replace {site.storage.database} with {source} (schema {found.schema}, "
                f"last sequence {found.last_sequence})? The current database is kept aside.",
                abort=True,
            )
        report = restore(site.storage.database, source, datetime.now(UTC), central)
    except (BackupError, OSError) as err:
        typer.echo(f"restore refused: {err}", err=True)
        raise typer.Exit(1) from err
    structlog.get_logger("edge.backup").info(
        "edge.restore", source=str(source), schema=report.restored.schema,
        kept_aside=str(report.kept_aside), central_sequence=central,
        next_sequence=report.next_sequence,
    )  # fmt: skip
    typer.echo(
        f"restored {source} into {site.storage.database} (schema {report.restored.schema}); "
        f"previous database kept as {report.kept_aside}; the next event is sequence "
        f"{report.next_sequence}"
    )


def central_last_sequence(site: SiteConfig) -> int | None:
    """The last sequence central holds for the site (None without a central)."""
    import httpx

    from contract.sync_api import STATUS_PATH
    from edge.storage.backup import BackupError

    central = site.central
    if not central.url:
        return None
    try:
        reply = httpx.get(
            central.url.rstrip("/") + STATUS_PATH,
            headers={"Authorization": f"Bearer {central.site_key or ''}"},
            timeout=10,
        )
        reply.raise_for_status()
        return int(reply.json()["last_sequence"])
    except (httpx.HTTPError, ValueError, KeyError) as err:
        raise BackupError(
            f"cannot ask central ({central.url}) which events it holds: {err}; "
            "restore when central answers, or see docs/operations.md#backups for --offline"
        ) from err
