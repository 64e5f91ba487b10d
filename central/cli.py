"""`evpark central ...` commands. Heavy imports happen inside the commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="The cloud service: APIs, sync ingest, gateway.", no_args_is_help=True)
