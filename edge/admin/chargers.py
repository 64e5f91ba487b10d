"""`evpark chargers ...`: the chargers a site knows that are not in its configuration.

Like ``evpark users``, the commands open the site's SQLite database directly (from the
same ``--config`` as ``evpark edge run``), whether or not the daemon runs; a running
daemon picks the change up within ``ocpp.registry_refresh`` seconds (an approved
charger may connect, a removed or revoked one is disconnected).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from edge.admin.db import ConfigOption, site_database, transaction

chargers_app = typer.Typer(
    help="Chargers not in the site file: list them, approve, revoke or remove them.",
    no_args_is_help=True,
)

IdArgument = Annotated[str, typer.Argument(help="the charge point id")]


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"


@chargers_app.command("list")
def list_chargers(config: ConfigOption) -> None:
    """List the chargers that connected (or were approved) without being in the site file."""
    from edge.ocpp import admission as c

    with site_database(config, c.ChargerError) as (site, conn):
        found = c.list_registered(conn, site)
    if not found:
        typer.echo("no chargers outside the site file")
        return
    width = max(len(charger.id) for charger in found)
    for charger in found:
        state = f"approved {_when(charger.approved_at)}" if charger.approved else "pending"
        what = " ".join(part for part in (charger.vendor, charger.model) if part) or "-"
        typer.echo(
            f"{charger.id:<{width}}  {state:<34}  last seen {_when(charger.last_seen)}  {what}"
        )


@chargers_app.command("approve")
def approve(config: ConfigOption, charger_id: IdArgument) -> None:
    """Let a charger connect with auto_register off (an id not seen yet is pre-approved)."""
    from edge.ocpp import admission as c

    with site_database(config, c.ChargerError) as (site, conn), transaction(conn) as unit:
        approved = c.approve(unit, conn, site, charger_id, datetime.now(UTC))
    typer.echo(f"approved {approved}")
    if site.site.environment == "production" and not site.mutual_tls:
        typer.echo(
            f"note: in production {approved} connects only with a client certificate "
            "(ocpp.tls.client_ca_file); to give it a password, list it under [[chargers]]",
            err=True,
        )


@chargers_app.command("revoke")
def revoke(config: ConfigOption, charger_id: IdArgument) -> None:
    """Take an approval back (the charger is disconnected and pending again)."""
    from edge.ocpp import admission as c

    with site_database(config, c.ChargerError) as (site, conn), transaction(conn) as unit:
        revoked = c.revoke(unit, conn, site, charger_id)
    typer.echo(f"revoked {revoked}")


@chargers_app.command("remove")
def remove(config: ConfigOption, charger_id: IdArgument) -> None:
    """Forget a charger that is not in the site file (its sessions stay in the history)."""
    from edge.ocpp import admission as c

    with site_database(config, c.ChargerError) as (site, conn), transaction(conn) as unit:
        removed = c.remove(unit, conn, site, charger_id)
    typer.echo(f"removed {removed}")
