"""A circuit breaker for outbound calls; the clock is injected, no I/O here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Stops calling a failing dependency for ``reset_after``, then lets one trial through.

    ``failure_threshold`` consecutive failures open it; a success closes it; a failed
    trial while half-open opens it again.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        reset_after: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.name = name
        self._threshold = failure_threshold
        self._reset_after = reset_after
        self._clock = clock
        self._failures = 0
        self._opened_at: datetime | None = None
        self._trial_since: datetime | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._clock() >= self._opened_at + self._reset_after:
            return "half_open"
        return "open"

    @property
    def retry_at(self) -> datetime | None:
        """While open, when a trial call will be allowed."""
        return None if self._opened_at is None else self._opened_at + self._reset_after

    def allow(self) -> bool:
        """May a call go out now? While half-open, only one trial at a time."""
        state = self.state
        if state == "closed":
            return True
        now = self._clock()
        if state == "half_open" and (
            self._trial_since is None or now >= self._trial_since + self._reset_after
        ):
            self._trial_since = now  # a trial that never reported back expires
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_since = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._trial_since is not None or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._trial_since = None
