"""Sensor clocks: which time a reading is given, and what is wrong with its sensor's clock.

No I/O: the MQTT adapter asks :meth:`SensorClocks.judge` about every state reading and
counts and logs what it answers. The rules (docs/mqtt.md, "Sensor clocks"):

- A reading is never dropped because of its ``ts``: a live message is what the sensor
  says now, whatever its clock says.
- A ``ts`` within ``tolerance`` of the receive time is trusted and dates the reading.
  Further off it is not trusted and the receive time is used instead: ``future`` (the
  clock runs fast), ``past`` (it runs slow, or the message was held up on the way; not
  for a replay, see below, which may well be old) or ``reset`` (before 2020: a clock
  that lost its time and restarted at 1970 or 2000).
- A live reading older than the last trusted one is applied and counted as ``backwards``
  (the clock was set back, or a gateway reordered two messages).
- The only drop: a retained reading redelivered when the edge subscribes (a replay) that
  is older than a trusted reading already applied: a broker that restarted from an older
  save, not news (``stale_replay``). After an untrusted reading nothing is dropped, so a
  clock that ran fast and was then corrected is never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

DEFAULT_TOLERANCE = timedelta(minutes=5)
RESET_BEFORE = datetime(2020, 1, 1, tzinfo=UTC)  # no sensor of ours measured before this


class ClockProblem(StrEnum):
    FUTURE = "future"
    PAST = "past"
    RESET = "reset"
    BACKWARDS = "backwards"
    STALE_REPLAY = "stale_replay"


@dataclass(frozen=True)
class ClockVerdict:
    """``accepted``: hand the reading on, dated ``measured_at`` (None: it had no ``ts``)."""

    accepted: bool
    measured_at: datetime | None
    problem: ClockProblem | None = None
    skew: timedelta | None = None  # the sensor's ts minus the receive time


@dataclass(frozen=True)
class _Last:
    ts: datetime
    trusted: bool


class SensorClocks:
    """What the edge remembers of each sensor's clock: its last accepted ``ts``."""

    def __init__(self, tolerance: timedelta = DEFAULT_TOLERANCE, max_sensors: int = 10_000) -> None:
        if tolerance <= timedelta(0):
            raise ValueError(f"the clock tolerance must be positive, not {tolerance}")
        self.tolerance = tolerance
        self._max_sensors = max_sensors
        self._last: dict[str, _Last] = {}

    def judge(
        self, sensor: str, ts: datetime | None, received_at: datetime, *, replayed: bool
    ) -> ClockVerdict:
        """``ts``: the reading's own time, if it has one; ``replayed``: a retained message
        delivered on subscribing rather than published just now."""
        if ts is None:
            return ClockVerdict(accepted=True, measured_at=None)
        skew = ts - received_at
        problem: ClockProblem | None = None
        if ts < RESET_BEFORE:
            problem = ClockProblem.RESET
        elif skew > self.tolerance:
            problem = ClockProblem.FUTURE
        elif skew < -self.tolerance and not replayed:  # a retained message may well be old
            problem = ClockProblem.PAST
        last = self._last.get(sensor)
        older = last is not None and last.trusted and ts < last.ts
        if replayed and older and problem is None:
            return ClockVerdict(False, None, ClockProblem.STALE_REPLAY, skew)
        if older and problem is None and not replayed:
            problem = ClockProblem.BACKWARDS
        trusted = problem in (None, ClockProblem.BACKWARDS)
        if sensor not in self._last and len(self._last) >= self._max_sensors:
            self._last.clear()  # bounded whatever ids arrive; forgetting only skips drops
        self._last[sensor] = _Last(ts, trusted)
        return ClockVerdict(True, ts if trusted else received_at, problem, skew)
