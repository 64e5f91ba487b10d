"""Retry delays: exponential growth with jitter, the one policy every reconnect and retry uses.

The delay before retry ``n`` (0-based) grows ``base * 2**n`` up to ``cap``; a random share
``jitter`` of it is taken off, so clients that failed together do not retry together.
``jitter=0.5`` (the default) gives a delay uniform in ``[ceiling / 2, ceiling]``: never
less than half, so a retry storm is spread without retrying at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: float, rand: float) -> float:
    """Seconds before retry ``attempt`` (0-based); ``rand`` is uniform in [0, 1)."""
    if base <= 0 or cap < base:
        raise ValueError("need 0 < base <= cap")
    if not 0 <= jitter <= 1:
        raise ValueError("jitter must be in [0, 1]")
    # 2**n overflows a float past n ~ 1023; the ceiling is reached long before that
    ceiling = cap if attempt >= 64 else min(cap, base * 2 ** max(0, attempt))
    return ceiling * (1.0 - jitter * rand)


@dataclass
class Backoff:
    """The retry policy of one long-lived loop: ``next_delay()`` after each failure,
    ``reset()`` after a success."""

    base: float = 1.0
    cap: float = 60.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def __post_init__(self) -> None:
        backoff_delay(0, base=self.base, cap=self.cap, jitter=self.jitter, rand=0.0)  # checks

    def next_delay(self) -> float:
        delay = backoff_delay(
            self.attempts, base=self.base, cap=self.cap, jitter=self.jitter, rand=self.rng.random()
        )
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0
