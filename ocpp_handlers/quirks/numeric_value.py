"""1.6 sampled values sent as JSON numbers where the schema wants strings.

Seen from ESP32-based chargers and others (mobilityhouse/ocpp #377:
``"sampledValue":[{"value":10,"measurand":"Energy.Active.Import.Register","unit":"Wh"}]``):
the value is clear, so it is taken as the string it should have been.
"""

from __future__ import annotations

from typing import Any


def repair(samples: list[Any]) -> bool:
    """Numbers made strings in place; True if any was."""
    changed = False
    for sample in samples:
        if isinstance(sample, dict):
            value = sample.get("value")
            if isinstance(value, int | float) and not isinstance(value, bool):
                sample["value"] = repr(value)
                changed = True
    return changed
