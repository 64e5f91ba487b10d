"""`evpark users ...`: manage the users of the edge's web UI and API.

The commands open the site's SQLite database directly (the one ``evpark edge run`` uses,
from the same ``--config``), so they work on the edge host whether or not the daemon is
running (WAL lets both write). Each change is one transaction that checks its rules
(duplicate names, the last admin) and applies them together.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from edge.admin.db import ConfigOption, site_database, transaction

users_app = typer.Typer(
    help="Users of the edge's web UI and API: create, list, change roles and passwords.",
    no_args_is_help=True,
)

UsernameOption = Annotated[str, typer.Option("--username", "-u", help="the user's login name")]
RoleOption = Annotated[
    str, typer.Option("--role", "-r", help="viewer, technician or admin", case_sensitive=False)
]
StdinOption = Annotated[
    bool,
    typer.Option("--password-stdin", help="read the password from the first line of stdin"),
]


@contextlib.contextmanager
def _database(config: Path) -> Iterator[sqlite3.Connection]:
    from edge.services.users import UserError

    with site_database(config, UserError) as (_, conn):
        yield conn


def _read_password(from_stdin: bool) -> str:
    from edge.services import users as u

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return u.check_password(password)


def _now() -> datetime:
    return datetime.now(UTC)


@users_app.command("create")
def create(
    config: ConfigOption,
    username: UsernameOption,
    role: RoleOption = "viewer",
    password_stdin: StdinOption = False,
) -> None:
    """Create a user (the first one should be an admin)."""
    from edge.services import users as u

    wanted = u.parse_role(role.lower())
    u.check_username(username)
    try:
        hashed = u.Passwords().hash(_read_password(password_stdin))
    except u.UserError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    with _database(config) as conn, transaction(conn) as unit:
        u.check_new(conn, username)
        u.insert_user(unit, username, hashed, wanted, _now())
    typer.echo(f"created {username} ({wanted})")


@users_app.command("list")
def list_users(config: ConfigOption) -> None:
    """List the users with their roles and last login."""
    from edge.services import users as u

    with _database(config) as conn:
        found = u.list_users(conn)
    if not found:
        typer.echo(
            "no users yet: create the first admin with `evpark users create ... --role admin`"
        )
        return
    width = max(len(user.username) for user in found)
    for user in found:
        last = user.last_login.isoformat(timespec="seconds") if user.last_login else "never"
        typer.echo(f"{user.username:<{width}}  {user.role:<10}  last login {last}")


@users_app.command("set-role")
def set_role(config: ConfigOption, username: UsernameOption, role: RoleOption) -> None:
    """Change a user's role (the last admin cannot be demoted)."""
    from edge.services import users as u

    wanted = u.parse_role(role.lower())
    with _database(config) as conn, transaction(conn) as unit:
        u.check_role_change(conn, username, wanted)
        u.update_role(unit, username, wanted, _now())
    typer.echo(f"{username} is now {wanted}")


@users_app.command("passwd")
def passwd(
    config: ConfigOption, username: UsernameOption, password_stdin: StdinOption = False
) -> None:
    """Set a user's password; their open sessions end."""
    from edge.services import users as u

    with _database(config) as conn:
        u.check_existing(conn, username)
        hashed = u.Passwords().hash(_read_password(password_stdin))
        with transaction(conn) as unit:
            u.check_existing(conn, username)
            u.update_password(unit, username, hashed, _now())
    typer.echo(f"password of {username} changed")


@users_app.command("delete")
def delete(config: ConfigOption, username: UsernameOption) -> None:
    """Delete a user with their sessions and API tokens (never the last admin)."""
    from edge.services import users as u

    with _database(config) as conn, transaction(conn) as unit:
        u.check_delete(conn, username)
        u.delete_user(unit, username)
    typer.echo(f"deleted {username}")


@users_app.command("token")
def token(
    config: ConfigOption,
    username: UsernameOption,
    name: Annotated[str, typer.Option(help="what the token is for")] = "api",
    revoke: Annotated[bool, typer.Option(help="revoke all of the user's tokens instead")] = False,
) -> None:
    """Create an API token for scripts (``Authorization: Bearer <token>``), printed once."""
    from edge.services import users as u

    secret = u.new_token()
    with _database(config) as conn, transaction(conn) as unit:
        user = u.check_existing(conn, username)
        if revoke:
            u.delete_api_tokens(unit, username)
        else:
            u.insert_api_token(unit, u.token_hash(secret), user.id, name[:100], _now())
    typer.echo(f"revoked the API tokens of {username}" if revoke else secret)
