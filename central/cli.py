"""`evpark central ...` commands. Heavy imports happen inside the commands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from central.settings import CentralSettings

app = typer.Typer(help="The cloud service: APIs, sync ingest, gateway.", no_args_is_help=True)
config_app = typer.Typer(help="Central's settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")
keys_app = typer.Typer(
    help="API keys for drivers' apps, operators and sites.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
vehicles_app = typer.Typer(
    help="Which vehicles belong to which user (what a driver key may see).",
    no_args_is_help=True,
)
app.add_typer(vehicles_app, name="vehicles")
R = TypeVar("R")

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="where the SQLite databases live", envvar="EVPARK_CENTRAL_DATA_DIR"
    ),
]
LogFormatOption = Annotated[
    str, typer.Option(help="auto, console or json", envvar="EVPARK_LOG_FORMAT")
]
ServiceOption = Annotated[
    str,
    typer.Option(
        help="all (gateway and every service), gateway (alone, proxying), or one "
        "service: parking, charging, sync, notification, analytics"
    ),
]


def _settings(exit_code: int = 2, config: Path | None = None, **overrides: Any) -> CentralSettings:
    """The settings as every command reads them; a mistake is one line per problem on
    stderr and ``exit_code``, never a traceback."""
    from central.settings import load_settings
    from central.settings_sources import CentralConfigError

    try:
        return load_settings(config, **overrides)
    except CentralConfigError as err:
        for key, message in err.problems:
            typer.echo(f"central settings: {key}: {message}", err=True)
        raise typer.Exit(exit_code) from err


@config_app.command("check")
def config_check(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="central TOML file", envvar="EVPARK_CENTRAL_CONFIG"),
    ] = None,
    service: ServiceOption = "all",
    data_dir: DataDirOption = None,
) -> None:
    """Read the settings as `central run` would (environment, secret files, the TOML file),
    print every problem (exit 1) or what the process would run and use (secrets masked)."""
    from central.app import SERVICE_NAMES
    from central.process import UnknownRole, describe, plan_process

    settings = _settings(1, config=config, data_dir=data_dir)
    try:
        plan = plan_process(settings, service, SERVICE_NAMES)
    except UnknownRole as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from err
    summary = describe(settings, plan)
    typer.echo(f"ok: {service} ({settings.environment})")
    for owner, url in summary["databases"].items():
        typer.echo(f"  database {owner}: {url}")
    typer.echo(f"  bus: {summary['bus']}")
    typer.echo(f"  cache: {summary['cache']}")
    for name, url in summary.get("routes_to", {}).items():
        typer.echo(f"  routes {name} to: {url}")
    typer.echo(f"  listen: {summary['listen']}")


@app.command("run")
def run(
    data_dir: DataDirOption = None,
    service: ServiceOption = "all",
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[
        int | None,
        typer.Option(help="listen port (default 8000, or the service's own port 3001-3005)"),
    ] = None,
    log_format: LogFormatOption = "auto",
) -> None:
    """Run central until SIGTERM or Ctrl-C: by default everything in one process on SQLite."""
    import structlog
    import uvicorn

    from central.app import SERVICE_NAMES, create_app
    from central.process import UnknownRole, describe, plan_process
    from common.logs import configure_logging

    configure_logging(log_format)
    settings = _settings(data_dir=data_dir, host=host)
    try:
        plan = plan_process(settings, service, SERVICE_NAMES, port)
    except UnknownRole as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    application = create_app(settings, services=list(plan.services), gateway=plan.gateway)
    structlog.get_logger("central.cli").info("central.starting", **describe(settings, plan))
    uvicorn.run(
        application,
        host=plan.host,
        port=plan.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command("migrate")
def migrate_cmd(
    data_dir: DataDirOption = None,
    create_databases: Annotated[
        bool,
        typer.Option(
            "--create-databases",
            help="create the PostgreSQL databases that do not exist yet (needs CREATEDB)",
        ),
    ] = False,
) -> None:
    """Upgrade every service's database to the latest schema (also done at start-up)."""
    import asyncio

    from sqlalchemy.engine import make_url

    from central.app import SERVICE_NAMES
    from central.infra.databases import MissingDatabase, create_database
    from central.infra.db import create_engine, migrate

    settings = _settings(data_dir=data_dir)

    async def main() -> None:
        for name in ["gateway", *SERVICE_NAMES]:
            url = settings.database_url_for(name)
            if create_databases and await create_database(url):
                typer.echo(f"{name}: created database {make_url(url).database}")
            engine = create_engine(url)
            try:
                await migrate(engine, name)
            finally:
                await engine.dispose()
            typer.echo(f"{name}: up to date")

    try:
        asyncio.run(main())
    except MissingDatabase as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from err


@keys_app.command("create")
def keys_create(
    scope: Annotated[str, typer.Option(help="driver, operator or site")],
    site: Annotated[str | None, typer.Option(help="the site id (site keys only)")] = None,
    user: Annotated[
        str | None, typer.Option(help="the user a driver key belongs to (driver keys only)")
    ] = None,
    vehicle: Annotated[
        list[str] | None,
        typer.Option(help="a vehicle of that user (repeatable); added to the user's vehicles"),
    ] = None,
    name: Annotated[str, typer.Option(help="a label to recognise the key by")] = "",
    data_dir: DataDirOption = None,
) -> None:
    """Create an API key and print it (it is shown once; only its hash is stored).

    A driver key belongs to a user (--user) and sees only that user's vehicles."""
    import asyncio

    from central.gateway.keys import InvalidKeyRequest

    async def create(store: KeyStoreT) -> str:
        return await store.create(scope, site, name, user_id=user, vehicle_ids=vehicle or ())

    try:
        key = asyncio.run(_with_keys(data_dir, create))
    except InvalidKeyRequest as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    typer.echo(key)


if TYPE_CHECKING:
    from central.gateway.keys import KeyStore as KeyStoreT


async def _with_keys(data_dir: Path | None, action: Callable[[KeyStoreT], Awaitable[R]]) -> R:
    """Run ``action`` on the gateway's key store (migrated first)."""
    from central.context import utc_now
    from central.gateway.keys import KeyStore
    from central.infra.db import create_engine, migrate

    settings = _settings(data_dir=data_dir)
    engine = create_engine(settings.database_url_for("gateway"))
    try:
        await migrate(engine, "gateway")
        return await action(KeyStore(engine, utc_now))
    finally:
        await engine.dispose()


@vehicles_app.command("add")
def vehicles_add(
    user: Annotated[str, typer.Argument(help="the user id")],
    vehicle: Annotated[list[str], typer.Argument(help="vehicle ids")],
    data_dir: DataDirOption = None,
) -> None:
    """Register vehicles to a user (a vehicle has one owner); the user's driver keys see
    them within 30 seconds."""
    import asyncio

    from central.gateway.keys import InvalidKeyRequest

    async def add(store: KeyStoreT) -> list[str]:
        await store.add_vehicles(user, vehicle)
        return await store.vehicles_of(user)

    try:
        held = asyncio.run(_with_keys(data_dir, add))
    except InvalidKeyRequest as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    typer.echo(f"{user}: {' '.join(held)}")


@vehicles_app.command("remove")
def vehicles_remove(
    user: Annotated[str, typer.Argument(help="the user id")],
    vehicle: Annotated[str, typer.Argument(help="the vehicle id")],
    data_dir: DataDirOption = None,
) -> None:
    """Take a vehicle from a user."""
    import asyncio

    async def remove(store: KeyStoreT) -> bool:
        return await store.remove_vehicle(user, vehicle)

    if not asyncio.run(_with_keys(data_dir, remove)):
        typer.echo(f"user {user} holds no vehicle {vehicle}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {vehicle} from {user}")


@vehicles_app.command("list")
def vehicles_list(
    user: Annotated[str, typer.Argument(help="the user id")],
    data_dir: DataDirOption = None,
) -> None:
    """A user's vehicles, one a line."""
    import asyncio

    async def held(store: KeyStoreT) -> list[str]:
        return await store.vehicles_of(user)

    for vehicle_id in asyncio.run(_with_keys(data_dir, held)):
        typer.echo(vehicle_id)


@keys_app.command("list")
def keys_list(
    limit: Annotated[int, typer.Option(min=1, help="keys a page")] = 500,
    cursor: Annotated[
        str | None, typer.Option(help="the cursor printed after the previous page")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """List keys (id, scope, site, user, name, created, revoked), oldest first, a page at
    a time; secrets are never shown. More pages: the last line says the next --cursor."""
    import asyncio
    from datetime import datetime

    from central.gateway.keys import KeyInfo
    from central.infra.paging import BadCursor, decode_cursor, encode_cursor

    try:
        after = None if cursor is None else decode_cursor("keys", cursor, (datetime, str))
    except BadCursor as err:
        typer.echo(f"invalid cursor: {err}", err=True)
        raise typer.Exit(2) from err

    async def page(store: KeyStoreT) -> list[KeyInfo]:
        return await store.list(limit + 1, after)

    found = asyncio.run(_with_keys(data_dir, page))
    for key in found[:limit]:
        revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
        typer.echo(
            f"{key.id}\t{key.scope}\t{key.site_id or '-'}\t{key.user_id or '-'}\t"
            f"{key.name or '-'}\t{key.created_at.isoformat()}\t{revoked}"
        )
    if len(found) > limit:
        last = found[limit - 1]
        typer.echo(f"# more: --cursor {encode_cursor('keys', (last.created_at, last.id))}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (the part after evp_)")],
    data_dir: DataDirOption = None,
) -> None:
    """Revoke a key; gateways stop accepting it within 30 seconds."""
    import asyncio

    from central.context import utc_now
    from central.gateway.keys import KeyStore
    from central.infra.db import create_engine, migrate

    settings = _settings(data_dir=data_dir)

    async def main() -> bool:
        engine = create_engine(settings.database_url_for("gateway"))
        try:
            await migrate(engine, "gateway")
            return await KeyStore(engine, utc_now).revoke(key_id)
        finally:
            await engine.dispose()

    if not asyncio.run(main()):
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")
