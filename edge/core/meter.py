"""Meter values, version-neutral: one unit per quantity whatever the charger sends.

Energy in Wh, power in W, current in A, voltage in V, state of charge in percent.
Chargers send registers in Wh or kWh (1.6 ``unit``; 2.0.1 ``unitOfMeasure`` with a
power-of-ten ``multiplier``), values as strings or, against the 1.6 schema, as numbers,
and now and then an empty string: those are skipped, not read as zero. A value whose unit
is not its measurand's (a current in A where the measurand, left out, means the energy
register) is skipped too: read as the other quantity, it would corrupt the session.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Final, NamedTuple

ENERGY: Final = "Energy.Active.Import.Register"
POWER: Final = "Power.Active.Import"
CURRENT: Final = "Current.Import"
VOLTAGE: Final = "Voltage"
SOC: Final = "SoC"

# unit -> (canonical unit, factor)
_UNITS: Final[dict[str, tuple[str, float]]] = {
    "wh": ("Wh", 1.0),
    "kwh": ("Wh", 1000.0),
    "w": ("W", 1.0),
    "kw": ("W", 1000.0),
    "a": ("A", 1.0),
    "v": ("V", 1.0),
    "percent": ("Percent", 1.0),
    "%": ("Percent", 1.0),
}
_DEFAULT_UNIT: Final = {ENERGY: "Wh", POWER: "W", CURRENT: "A", VOLTAGE: "V", SOC: "Percent"}


# NamedTuples: immutable like frozen dataclasses, and several times cheaper to make,
# which counts here (every sampled value of every meter value of every charger).
class SampledValue(NamedTuple):
    measurand: str
    value: float
    phase: str | None = None
    context: str | None = None


class MeterReading(NamedTuple):
    """The main quantities of one meter value (one timestamp)."""

    at: datetime
    energy_wh: float | None = None
    power_w: float | None = None
    current_a: float | None = None
    voltage_v: float | None = None
    soc: float | None = None
    context: str | None = None


def to_number(raw: object) -> float | None:
    """A sampled value as a number; None for empty or unreadable values."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) else None


def normalise(measurand: str, raw: object, unit: str | None, multiplier: int = 0) -> float | None:
    """A value in the canonical unit of its measurand, or None if it cannot be read."""
    number = to_number(raw)
    if number is None:
        return None
    expected = _DEFAULT_UNIT.get(measurand)
    unit_key = (unit or expected or "").lower()
    canonical, factor = _UNITS.get(unit_key, ("", 1.0))
    if expected is not None and canonical != expected:
        # a current in A under no measurand is no energy register (it defaults to one)
        return None
    if multiplier:
        try:
            factor *= 10.0**multiplier
        except OverflowError:  # a multiplier no meter has (10^400)
            return None
    value = number * factor
    return value if math.isfinite(value) else None


_PHASES: Final = frozenset(("L1", "L2", "L3", "L1-N", "L2-N", "L3-N"))
_MEAN: Final = frozenset((VOLTAGE, SOC))
_MAIN: Final = (ENERGY, POWER, CURRENT, VOLTAGE, SOC)


def reading(at: datetime, samples: list[SampledValue]) -> MeterReading:
    """Fold the sampled values of one timestamp into a reading.

    Where a charger sends per-phase values and no total, phases are summed for energy,
    power and current and averaged for voltage and SoC; a total (no phase) wins when
    present. One pass: this runs for every meter value of every charger.
    """
    totals: dict[str, float] = {}
    phase_sums: dict[str, float] = {}
    phase_counts: dict[str, int] = {}
    for sample in samples:
        if not sample.phase:
            totals[sample.measurand] = sample.value
        elif sample.phase in _PHASES:
            phase_sums[sample.measurand] = phase_sums.get(sample.measurand, 0.0) + sample.value
            phase_counts[sample.measurand] = phase_counts.get(sample.measurand, 0) + 1
    values: list[float | None] = []
    for measurand in _MAIN:
        value = totals.get(measurand)
        if value is None and measurand in phase_sums:
            value = phase_sums[measurand]
            if measurand in _MEAN:
                value /= phase_counts[measurand]
        values.append(value)
    return MeterReading(
        at, values[0], values[1], values[2], values[3], values[4],
        samples[0].context if samples else None,
    )  # fmt: skip
