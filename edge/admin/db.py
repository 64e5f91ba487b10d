"""The site database as the admin commands open it (`evpark users`, `evpark chargers`).

They open the SQLite file directly (the one ``evpark edge run`` uses, found from the same
``--config``), so they work on the edge host whether or not the daemon runs: WAL lets
both write. Each change is one transaction that checks its rules and applies them
together. Imports are deferred so that ``evpark --help`` stays quick.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from edge.config import SiteConfig
    from edge.storage.sqlite import Unit

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="site TOML file", envvar="EVPARK_CONFIG")
]


@contextlib.contextmanager
def site_database(
    config_file: Path, refusal: type[Exception]
) -> Iterator[tuple[SiteConfig, sqlite3.Connection]]:
    """The site's config and a migrated connection; ``refusal`` ends the command with exit 1."""
    from common.logs import configure_logging
    from edge.config import ConfigError, load_site_config
    from edge.storage.sqlite import connect, migrate

    configure_logging("console", level="WARNING")  # stdout is for the answer (a token, a list)
    try:
        config = load_site_config(config_file)
    except ConfigError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    path = config.storage.database
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        migrate(conn)
        yield config, conn
    except refusal as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    finally:
        conn.close()


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[Unit]:
    """Checks inside the block see the database as the change will find it."""
    from edge.storage.sqlite import Unit

    conn.execute("BEGIN IMMEDIATE")
    unit = Unit()
    try:
        yield unit
        for sql, params in unit.ops:
            conn.execute(sql, params)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
