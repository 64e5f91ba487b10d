"""Charging curves and the electrical model of one connector: plain code, no I/O.

An AC charger delivers roughly constant power until the battery is nearly full; a DC
charger's power tapers as the state of charge rises. ``ConnectorMeter.advance`` moves
the simulated session forward by a number of (simulated) seconds and keeps the energy
register monotonic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

CurveKind = Literal["ac", "dc"]


class ChargingCurve(Protocol):
    @property
    def voltage_v(self) -> float: ...

    @property
    def phases(self) -> int: ...

    def power_w(self, soc: float) -> float:
        """Power the vehicle draws at state of charge ``soc`` (0..100 %)."""
        ...


@dataclass(frozen=True)
class AcCurve:
    """Constant power (e.g. 11 kW or 22 kW three-phase) with a short taper above 95 %."""

    max_power_w: float = 11_000.0
    voltage_v: float = 230.0
    phases: int = 3

    def power_w(self, soc: float) -> float:
        if soc >= 100.0:
            return 0.0
        if soc <= 95.0:
            return self.max_power_w
        return self.max_power_w * max(0.1, (100.0 - soc) / 5.0)


@dataclass(frozen=True)
class DcCurve:
    """Full power up to ``taper_from`` % then a roughly linear fall to 5 % of it at 100 %."""

    max_power_w: float = 50_000.0
    voltage_v: float = 400.0
    phases: int = 1
    taper_from: float = 55.0

    def power_w(self, soc: float) -> float:
        if soc >= 100.0:
            return 0.0
        if soc <= self.taper_from:
            return self.max_power_w
        fraction = (100.0 - soc) / (100.0 - self.taper_from)
        return self.max_power_w * max(0.05, fraction)


def make_curve(kind: CurveKind, max_power_w: float) -> ChargingCurve:
    return AcCurve(max_power_w=max_power_w) if kind == "ac" else DcCurve(max_power_w=max_power_w)


@dataclass(frozen=True)
class MeterSample:
    energy_wh: float
    power_w: float
    current_a: float
    voltage_v: float
    soc: float


@dataclass
class ConnectorMeter:
    """The energy register of one connector and the vehicle currently plugged in."""

    curve: ChargingCurve
    register_wh: float = 0.0
    soc: float = 20.0
    capacity_wh: float = 60_000.0
    limit_w: float | None = None
    power_w: float = 0.0

    def plug(self, soc: float, capacity_wh: float) -> None:
        self.soc = soc
        self.capacity_wh = capacity_wh
        self.power_w = 0.0

    def offered_w(self) -> float:
        power = self.curve.power_w(self.soc)
        if self.limit_w is not None:
            power = min(power, self.limit_w)
        return max(0.0, power)

    def advance(self, seconds: float) -> MeterSample:
        """Charge for ``seconds`` of simulated time (power integrated in small steps)."""
        remaining = max(0.0, seconds)
        step = 30.0
        power = self.offered_w()
        while remaining > 0:
            dt = min(step, remaining)
            power = self.offered_w()
            energy = power * dt / 3600.0
            self.register_wh += energy
            self.soc = min(100.0, self.soc + 100.0 * energy / self.capacity_wh)
            remaining -= dt
        self.power_w = power if seconds > 0 else self.power_w
        return self.sample()

    def idle(self) -> None:
        self.power_w = 0.0

    def sample(self) -> MeterSample:
        voltage = self.curve.voltage_v
        current = self.power_w / (voltage * self.curve.phases)
        return MeterSample(
            energy_wh=self.register_wh,
            power_w=self.power_w,
            current_a=current,
            voltage_v=voltage,
            soc=self.soc,
        )

    def watts_for_amps(self, amps: float) -> float:
        return amps * self.curve.voltage_v * self.curve.phases
