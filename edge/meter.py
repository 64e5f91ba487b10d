"""Meter values, version-neutral: one unit per quantity whatever the charger sends.

Energy in Wh, power in W, current in A, voltage in V, state of charge in percent.
Chargers send registers in Wh or kWh (1.6 ``unit``; 2.0.1 ``unitOfMeasure`` with a
power-of-ten ``multiplier``), values as strings or, against the 1.6 schema, as numbers,
and now and then an empty string: those are skipped, not read as zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Final

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


@dataclass(frozen=True, slots=True)
class SampledValue:
    measurand: str
    value: float
    phase: str | None = None
    context: str | None = None


@dataclass(frozen=True, slots=True)
class MeterReading:
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
    unit_key = (unit or _DEFAULT_UNIT.get(measurand, "")).lower()
    _, factor = _UNITS.get(unit_key, ("", 1.0))
    return number * factor * (10.0**multiplier)


def reading(at: datetime, samples: list[SampledValue]) -> MeterReading:
    """Fold the sampled values of one timestamp into a reading.

    Where a charger sends per-phase values and no total, phases are summed for power and
    current and averaged for voltage; a total (no phase, or phase N) wins when present.
    """

    def pick(measurand: str, combine_phases: str) -> float | None:
        totals = [s.value for s in samples if s.measurand == measurand and not s.phase]
        if totals:
            return totals[-1]
        phases = [
            s.value
            for s in samples
            if s.measurand == measurand and s.phase in ("L1", "L2", "L3", "L1-N", "L2-N", "L3-N")
        ]
        if not phases:
            return None
        total = sum(phases)
        return total / len(phases) if combine_phases == "mean" else total

    context = samples[0].context if samples else None
    return MeterReading(
        at=at,
        energy_wh=pick(ENERGY, "sum"),
        power_w=pick(POWER, "sum"),
        current_a=pick(CURRENT, "sum"),
        voltage_v=pick(VOLTAGE, "mean"),
        soc=pick(SOC, "mean"),
        context=context,
    )
