"""`evpark central ...` commands. Heavy imports happen inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The cloud service: APIs, sync ingest, gateway.", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys for drivers' apps, operators and sites.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="where the SQLite databases live", envvar="EVPARK_CENTRAL_DATA_DIR"
    ),
]
LogFormatOption = Annotated[
    str, typer.Option(help="auto, console or json", envvar="EVPARK_LOG_FORMAT")
]


@app.command("run")
def run(
    data_dir: DataDirOption = None,
    service: Annotated[
        str,
        typer.Option(
            help="all (gateway and every service), gateway (alone, proxying), or one "
            "service: parking, charging, sync, notification, analytics"
        ),
    ] = "all",
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[
        int | None,
        typer.Option(help="listen port (default 8000, or the service's own port 3001-3005)"),
    ] = None,
    log_format: LogFormatOption = "auto",
) -> None:
    """Run central until SIGTERM or Ctrl-C: by default everything in one process on SQLite."""
    import uvicorn
    from pydantic import ValidationError

    from central.app import SERVICE_NAMES, create_app
    from central.logs import configure_logging

    configure_logging(log_format)
    try:
        from central.settings import load_settings

        settings = load_settings(data_dir=data_dir, host=host)
    except ValidationError as err:
        typer.echo(f"invalid central settings:\n{err}", err=True)
        raise typer.Exit(2) from err
    if service == "all":
        application = create_app(settings)
        listen_port = port if port is not None else settings.port
    elif service == "gateway":
        application = create_app(settings, services=[])
        listen_port = port if port is not None else settings.port
    elif service in SERVICE_NAMES:
        application = create_app(settings, services=[service], gateway=False)
        listen_port = port if port is not None else settings.service_ports[service]
    else:
        typer.echo(f"unknown service {service!r}", err=True)
        raise typer.Exit(2)
    uvicorn.run(
        application,
        host=settings.host,
        port=listen_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command("migrate")
def migrate_cmd(data_dir: DataDirOption = None) -> None:
    """Upgrade every service's database to the latest schema (also done at start-up)."""
    import asyncio

    from central.app import available_services
    from central.db import create_engine, migrate
    from central.settings import load_settings

    settings = load_settings(data_dir=data_dir)

    async def main() -> None:
        for name in ["gateway", *available_services()]:
            engine = create_engine(settings.database_url_for(name))
            try:
                await migrate(engine, name)
            finally:
                await engine.dispose()
            typer.echo(f"{name}: up to date")

    asyncio.run(main())


@keys_app.command("create")
def keys_create(
    scope: Annotated[str, typer.Option(help="driver, operator or site")],
    site: Annotated[str | None, typer.Option(help="the site id (site keys only)")] = None,
    name: Annotated[str, typer.Option(help="a label to recognise the key by")] = "",
    data_dir: DataDirOption = None,
) -> None:
    """Create an API key and print it (it is shown once; only its hash is stored)."""
    import asyncio

    from central.gateway.keys import InvalidKeyRequest

    try:
        key = asyncio.run(_create_key(data_dir, scope, site, name))
    except InvalidKeyRequest as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    typer.echo(key)


async def _create_key(data_dir: Path | None, scope: str, site: str | None, name: str) -> str:
    from central.context import utc_now
    from central.db import create_engine, migrate
    from central.gateway.keys import KeyStore
    from central.settings import load_settings

    settings = load_settings(data_dir=data_dir)
    engine = create_engine(settings.database_url_for("gateway"))
    try:
        await migrate(engine, "gateway")
        return await KeyStore(engine, utc_now).create(scope, site, name)
    finally:
        await engine.dispose()


@keys_app.command("list")
def keys_list(data_dir: DataDirOption = None) -> None:
    """List keys (id, scope, site, name, created, revoked); secrets are never shown."""
    import asyncio

    from central.context import utc_now
    from central.db import create_engine, migrate
    from central.gateway.keys import KeyInfo, KeyStore
    from central.settings import load_settings

    async def main() -> list[KeyInfo]:
        settings = load_settings(data_dir=data_dir)
        engine = create_engine(settings.database_url_for("gateway"))
        try:
            await migrate(engine, "gateway")
            return await KeyStore(engine, utc_now).list()
        finally:
            await engine.dispose()

    for key in asyncio.run(main()):
        revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
        typer.echo(
            f"{key.id}\t{key.scope}\t{key.site_id or '-'}\t{key.name or '-'}\t"
            f"{key.created_at.isoformat()}\t{revoked}"
        )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (the part after evp_)")],
    data_dir: DataDirOption = None,
) -> None:
    """Revoke a key; gateways stop accepting it within 30 seconds."""
    import asyncio

    from central.context import utc_now
    from central.db import create_engine, migrate
    from central.gateway.keys import KeyStore
    from central.settings import load_settings

    async def main() -> bool:
        settings = load_settings(data_dir=data_dir)
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
