"""`evpark sim sensors`: placeholder until the sensor simulator lands."""

from __future__ import annotations

import typer


def sensors() -> None:
    """Publish simulated occupancy for the slots of a site."""
    raise typer.Exit(1)
