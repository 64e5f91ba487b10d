"""The site's grid meter on MQTT: ``evpark/<site>/grid/power``, the power in W.

A meter (or its gateway) publishes a plain number (``"18450"``) or JSON
(``{"power_w": 18450}``); the load manager takes what the building draws behind the same
connection off the site limit (docs/power.md). Anything else is refused with a log line:
a reading that is not a finite number of watts within reason is never passed on.
"""

from __future__ import annotations

import math
from typing import Final

import orjson

MAX_GRID_W: Final = 100_000_000.0  # 100 MW: beyond any car park's connection


def grid_power_topic(site_id: str) -> str:
    return f"evpark/{site_id}/grid/power"


class BadGridReading(ValueError):
    """A grid meter message that is not a power in W."""


def grid_watts(payload: bytes) -> float:
    """The watts in a grid meter message; :class:`BadGridReading` if there are none."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        raise BadGridReading("neither a number nor JSON") from err
    if isinstance(value, dict):
        value = value.get("power_w")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadGridReading('no number of watts (a number, or {"power_w": N})')
    watts = float(value)
    if not math.isfinite(watts) or abs(watts) > MAX_GRID_W:
        raise BadGridReading(f"{value!r} W is not a site's grid power")
    return watts
