"""`evpark sim ...` commands. Heavy imports happen inside the commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Simulated chargers, sensors and vehicles.", no_args_is_help=True)
