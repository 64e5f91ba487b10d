"""Meter values into one unit per quantity, whatever the charger sends (edge/core/meter.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge.core.meter import (
    CURRENT,
    ENERGY,
    POWER,
    SOC,
    VOLTAGE,
    MeterReading,
    SampledValue,
    normalise,
    reading,
    to_number,
)

AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.5", 12.5),
        (" 12.5 ", 12.5),
        ("0", 0.0),
        (12, 12.0),  # a number where 1.6 wants a string: the value is clear
        (12.5, 12.5),
        ("", None),
        ("   ", None),
        ("twelve", None),
        ("nan", None),
        ("inf", None),
        (float("nan"), None),
        (True, None),
        (None, None),
        ([], None),
    ],
)
def test_to_number_reads_what_can_be_read(raw: object, expected: float | None) -> None:
    assert to_number(raw) == expected


@pytest.mark.parametrize(
    ("measurand", "raw", "unit", "multiplier", "expected"),
    [
        (ENERGY, "13.5", "kWh", 0, 13_500.0),
        (ENERGY, "13500", "Wh", 0, 13_500.0),
        (ENERGY, "13500", None, 0, 13_500.0),  # 1.6's default unit for energy is Wh
        (ENERGY, "13.5", "KWH", 0, 13_500.0),  # units are read case-blind
        (ENERGY, 13.5, "Wh", 3, 13_500.0),  # 2.0.1: a power-of-ten multiplier
        (POWER, "7.2", "kW", 0, 7_200.0),
        (POWER, "7200", "W", 0, 7_200.0),
        (CURRENT, "16", "A", 0, 16.0),
        (VOLTAGE, "230", "V", 0, 230.0),
        (SOC, "80", "Percent", 0, 80.0),
        (ENERGY, "", "Wh", 0, None),
        (ENERGY, "5", "furlongs", 0, None),  # an unknown unit: not this quantity, skipped
        (ENERGY, "15.63", "A", 0, None),  # a current with its measurand left out (Alfen)
        (CURRENT, "16", None, 0, 16.0),
    ],
)
def test_normalise_gives_the_canonical_unit(
    measurand: str, raw: object, unit: str | None, multiplier: int, expected: float | None
) -> None:
    assert normalise(measurand, raw, unit, multiplier) == expected


def test_phases_are_summed_or_averaged_and_a_total_wins() -> None:
    folded = reading(
        AT,
        [
            SampledValue(ENERGY, 1000.0, "L1", "Sample.Periodic"),
            SampledValue(ENERGY, 2000.0, "L2"),
            SampledValue(POWER, 3000.0),  # the total
            SampledValue(POWER, 1000.0, "L1"),
            SampledValue(CURRENT, 16.0, "L1"),
            SampledValue(CURRENT, 15.0, "L2"),
            SampledValue(CURRENT, 99.0, "N"),  # neutral: not a phase that adds up
            SampledValue(VOLTAGE, 230.0, "L1-N"),
            SampledValue(VOLTAGE, 232.0, "L2-N"),
        ],
    )
    assert folded == MeterReading(
        AT,
        energy_wh=3000.0,
        power_w=3000.0,
        current_a=31.0,
        voltage_v=231.0,
        soc=None,
        context="Sample.Periodic",
    )


def test_nothing_readable_is_an_empty_reading() -> None:
    assert reading(AT, []) == MeterReading(AT)
