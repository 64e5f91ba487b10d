"""`evpark sim ...` commands. Each command lives in its own module, which imports only
typer at import time; the heavy imports happen when a command runs."""

from __future__ import annotations

import typer

from sim.charger.cli import chargers
from sim.sensors.cli import sensors

app = typer.Typer(help="Simulated chargers, sensors and vehicles.", no_args_is_help=True)
app.command("chargers")(chargers)
app.command("sensors")(sensors)
