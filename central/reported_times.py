"""Times a site reports are untrusted. No I/O.

A charger's or sensor's clock can be reset (to 2000, to year 1) or run far ahead (to
9999), and the edge forwards what it was told: the times are schema-valid, so they
arrive. Central keeps them as reported where they are shown (a session's history), but

* arithmetic on them never overflows: :func:`shift` and :func:`utc` saturate at the
  ends of ``datetime``, and :func:`in_zone` falls back to the time as given (they live
  in :mod:`central.infra.saturating`, which the database layer uses too, and are
  re-exported here for the rules' users);
* nothing is spread over, priced over or bucketed at a time outside what the service
  can believe: :func:`anchor` moves an instant that lies beyond ``future_tolerance``
  ahead of, or more than ``max_age`` behind, the moment central received it to that
  moment, and :func:`bounded_span` caps a session or visit at ``max_duration`` ending
  at its (anchored) end. Amounts (energy, money, counts) are never dropped, only placed.

Both return the problem they corrected so callers can count and log it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from central.infra.saturating import shift, utc

ClockProblem = Literal["future", "past", "end_before_start", "too_long"]


class ReportedTimeSettings(BaseModel):
    """How far central believes the times sites report (``CentralSettings.reported_times``)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    max_session_hours: float = Field(
        default=7 * 24,
        gt=0,
        description="a session or visit reported longer than this is spread over this "
        "span ending at its end, and counted as a clock problem",
    )
    future_tolerance_s: float = Field(
        default=900.0,
        ge=0,
        description="a reported time this far ahead of central's clock is taken as the "
        "time central received it",
    )
    max_age_days: float = Field(
        default=90.0,
        gt=0,
        description="a reported time older than this when received (a reset clock, or a "
        "site offline longer) is taken as the time central received it",
    )

    def policy(self) -> ClockPolicy:
        return ClockPolicy(
            max_duration=timedelta(hours=self.max_session_hours),
            future_tolerance=timedelta(seconds=self.future_tolerance_s),
            max_age=timedelta(days=self.max_age_days),
        )


@dataclass(frozen=True)
class ClockPolicy:
    max_duration: timedelta = timedelta(days=7)
    future_tolerance: timedelta = timedelta(minutes=15)
    max_age: timedelta = timedelta(days=90)


DEFAULT_POLICY: Final = ClockPolicy()


@dataclass(frozen=True)
class Anchored:
    at: datetime
    problem: ClockProblem | None = None


def anchor(at: datetime, received: datetime, policy: ClockPolicy = DEFAULT_POLICY) -> Anchored:
    """Where to place an instant a site reported, received by central at ``received``."""
    at = utc(at)
    if at > shift(received, policy.future_tolerance):
        return Anchored(utc(received), "future")
    if at < shift(received, -policy.max_age):
        return Anchored(utc(received), "past")
    return Anchored(at)


@dataclass(frozen=True)
class Span:
    """A bounded ``[start, end)`` to spread or price over; ``start == end`` is an instant."""

    start: datetime
    end: datetime
    problem: ClockProblem | None = None

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def bounded_span(
    started: datetime,
    stopped: datetime,
    received: datetime,
    policy: ClockPolicy = DEFAULT_POLICY,
) -> Span:
    """The span to account a reported ``[started, stopped)`` over.

    It ends at the anchored end (:func:`anchor`) and keeps the reported length, cut to
    ``max_duration``; a start after the stop gives an instant at the end. The problem
    named is the end's, else the length's.
    """
    end = anchor(stopped, received, policy)
    start, stop = utc(started), utc(stopped)
    if start > stop:
        return Span(end.at, end.at, end.problem or "end_before_start")
    length, problem = stop - start, end.problem
    if length > policy.max_duration:
        length, problem = policy.max_duration, problem or "too_long"
    return Span(shift(end.at, -length), end.at, problem)


#: what an integer column holds on every database central runs on (PostgreSQL INTEGER)
STORABLE: Final = 2**31 - 1


def reported_seconds(value: float | None, limit: int = STORABLE) -> int | None:
    """A duration in seconds a site reported, as a storable integer: ``None`` where it is
    not a finite number in ``[0, limit]`` (its times say more than such a figure)."""
    if value is None or not math.isfinite(value) or not 0 <= value <= limit:
        return None
    return int(value)


def reported_amount(value: float | None, limit: int = STORABLE) -> int | None:
    """An energy (Wh) or power (W) a meter reported, as a storable integer, rounded as
    the edge shows it: ``None`` where it is not a finite number within ``±limit`` (2.1
    GWh: a broken meter, not a session)."""
    if value is None or not math.isfinite(value) or not -limit <= value <= limit:
        return None
    return round(value)
