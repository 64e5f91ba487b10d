"""The delivery queue's rules: backoff with jitter, retry or dead-letter, dedup keys.

The delays follow :mod:`common.backoff`, the one retry rule of evpark, in whole timedeltas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from common.backoff import backoff_delay


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    jitter: float = 0.2
    """A random share of each delay, up to ``jitter``, is taken off: a delay lies in
    ``[(1 - jitter) * d, d]`` for ``d = base_delay * 2^(n-1)`` capped at ``max_delay``."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.base_delay <= timedelta(0) or self.max_delay < self.base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")


def retry_delay(policy: RetryPolicy, failures: int, rand: float) -> timedelta:
    """The wait after the ``failures``-th failure (1-based); ``rand`` is uniform in [0, 1)."""
    if failures < 1:
        raise ValueError("failures is 1-based")
    if not 0 <= rand < 1:
        raise ValueError("rand must be in [0, 1)")
    seconds = backoff_delay(
        failures - 1,
        base=policy.base_delay.total_seconds(),
        cap=policy.max_delay.total_seconds(),
        jitter=policy.jitter,
        rand=rand,
    )
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Retry:
    at: datetime
    attempts: int
    error: str


@dataclass(frozen=True)
class DeadLetter:
    attempts: int
    error: str


def after_failure(
    policy: RetryPolicy,
    *,
    attempts: int,
    error: str,
    permanent: bool,
    now: datetime,
    rand: float,
) -> Retry | DeadLetter:
    """What to do after delivery attempt number ``attempts`` (1-based) failed."""
    if permanent or attempts >= policy.max_attempts:
        return DeadLetter(attempts=attempts, error=error)
    return Retry(at=now + retry_delay(policy, attempts, rand), attempts=attempts, error=error)


def dedup_key(event_id: str, user_id: str, channel: str) -> str:
    """One notification per event, user and channel, however often the event is delivered."""
    return f"{event_id}|{user_id}|{channel}"
