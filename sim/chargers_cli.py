"""`evpark sim chargers`: placeholder until the simulator lands."""

from __future__ import annotations

import typer


def chargers() -> None:
    """Run simulated OCPP chargers against an edge."""
    raise typer.Exit(1)
