"""The `evpark` command line: one entry point for the edge, central, the simulator and the demo.

Each part owns its sub-commands (``edge.cli``, ``central.cli``, ``sim.cli``); those modules
import only typer at import time, so `evpark --help` stays fast and running one part never
loads another's code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from central.cli import app as central_app
from edge.admin.chargers import chargers_app
from edge.admin.users import users_app
from edge.cli import config_app, edge_app
from sim.cli import app as sim_app

app = typer.Typer(
    help="evpark: software for parking sites with EV chargers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        typer.echo(f"evpark {version('evpark')}")
        raise typer.Exit


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", is_eager=True, callback=_print_version, help="print the version"
        ),
    ] = False,
) -> None:
    """evpark: software for parking sites with EV chargers."""


app.add_typer(edge_app, name="edge")
app.add_typer(central_app, name="central")
app.add_typer(sim_app, name="sim")
app.add_typer(config_app, name="config")
app.add_typer(users_app, name="users")
app.add_typer(chargers_app, name="chargers")


@app.command("demo")
def demo(
    chargers: Annotated[
        int, typer.Option(min=0, help="extra simulated chargers per OCPP version")
    ] = 2,
    data_dir: Annotated[
        Path, typer.Option(help="where the demo keeps its databases and logs")
    ] = Path("data/demo"),
    duration: Annotated[
        float | None, typer.Option(min=1, help="stop once the site has run this many seconds")
    ] = None,
    log_format: Annotated[str, typer.Option(help="auto, console or json")] = "auto",
) -> None:
    """Bring up a whole simulated site (edge daemon and chargers) and print where to look."""
    from common.logs import configure_logging
    from evpark.demo import run_demo

    configure_logging(log_format, level="WARNING")
    run_demo(chargers_per_version=chargers, data_dir=data_dir.resolve(), duration=duration)


def main() -> None:
    app()
