"""Resilience rules as plain code: circuit breaker and token bucket (clock passed in).

Both are immutable values plus pure transition functions; the adapters
(:mod:`central.infra.http_client`, :mod:`central.gateway.ratelimit`) keep the current value per
target or per key and pass ``time.monotonic()`` in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

BreakerMode = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class Breaker:
    """Closed: calls flow, consecutive failures counted. Open: calls refused until
    ``reset_after`` seconds passed. Half-open: one trial call; success closes, failure
    re-opens."""

    mode: BreakerMode = "closed"
    failures: int = 0
    opened_at: float = 0.0
    trial_in_flight: bool = False


def breaker_allow(breaker: Breaker, now: float, reset_after: float) -> tuple[Breaker, bool]:
    if breaker.mode == "closed":
        return breaker, True
    if breaker.mode == "open":
        if now - breaker.opened_at >= reset_after:
            return replace(breaker, mode="half_open", trial_in_flight=True), True
        return breaker, False
    # half-open: only one trial at a time
    if breaker.trial_in_flight:
        return breaker, False
    return replace(breaker, trial_in_flight=True), True


def breaker_record(breaker: Breaker, ok: bool, now: float, threshold: int) -> Breaker:
    if ok:
        return Breaker()
    if breaker.mode == "half_open":
        return Breaker(mode="open", failures=breaker.failures + 1, opened_at=now)
    failures = breaker.failures + 1
    if failures >= threshold:
        return Breaker(mode="open", failures=failures, opened_at=now)
    return replace(breaker, failures=failures)


def breaker_retry_after(breaker: Breaker, now: float, reset_after: float) -> float:
    if breaker.mode != "open":
        return 0.0
    return max(0.0, reset_after - (now - breaker.opened_at))


@dataclass(frozen=True)
class Bucket:
    """A token bucket: ``tokens`` available at monotonic time ``updated``."""

    tokens: float
    updated: float


def bucket_take(
    bucket: Bucket | None, now: float, rate: float, burst: int, cost: float = 1.0
) -> tuple[Bucket, float]:
    """Take ``cost`` tokens. Returns the new bucket and 0.0 when allowed, or the unchanged
    (refilled) bucket and the seconds until enough tokens are there when refused."""
    if bucket is None:
        bucket = Bucket(tokens=float(burst), updated=now)
    elapsed = max(0.0, now - bucket.updated)
    tokens = min(float(burst), bucket.tokens + elapsed * rate)
    if tokens >= cost:
        return Bucket(tokens=tokens - cost, updated=now), 0.0
    return Bucket(tokens=tokens, updated=now), (cost - tokens) / rate
