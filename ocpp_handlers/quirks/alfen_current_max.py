"""Alfen (Eve Single/Pro, 1.6): the current offered to the EV sent as context ``CurrentMax``.

A real frame (lbbrhzn/ocpp #361), next to the measured current::

    {"value": "16.000", "context": "CurrentMax", "unit": "A"}

No measurand, so read by the letter it would be an energy register of 16 "A": it is the
maximum current the charger offers, which 1.6 calls ``Current.Offered``.
"""

from __future__ import annotations

from typing import Any

FIELD = "context"
VALUE = "CurrentMax"


def repair(sample: dict[str, Any]) -> bool:
    """The sample as 1.6 would have it; False if it is not this quirk's."""
    if sample.get("measurand", "Current.Offered") != "Current.Offered":
        return False
    del sample["context"]
    sample["measurand"] = "Current.Offered"
    return True
