"""Resilience rules as plain code: circuit breaker, token bucket (clock passed in), and the
settings of outbound calls with their retry delays (:mod:`common.backoff`).

Breaker and bucket are immutable values plus pure transition functions; the adapters
(:mod:`central.infra.http_client`, :mod:`central.gateway.ratelimit`) keep the current value per
target or per key and pass ``time.monotonic()`` in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from common.backoff import backoff_delay

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


RETRY_CAP_S = 2.0  # a caller is waiting: never sleep longer than this between attempts


class ResilienceSettings(BaseModel):
    """Outbound calls (services over HTTP): timeout, retries with backoff, circuit breaker
    (``CentralSettings.resilience``)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    timeout_s: float = Field(default=5.0, gt=0)
    ingest_timeout_s: float = Field(
        default=25.0,
        gt=0,
        description="the gateway's wait for sync to store a batch of events (POST "
        "/sync/v1/events): slow under a storm but done. With the wait for a connection "
        "(at most timeout_s) it stays below the edge's 35 s read timeout",
    )
    retries: int = Field(default=2, ge=0)
    max_connections: int = Field(
        default=100,
        ge=1,
        description="open connections per service; a call waits timeout_s at most for one",
    )
    backoff_s: float = Field(default=0.1, ge=0, description="0: retry at once")
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=10.0, gt=0)

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if self.backoff_s == 0:
            return 0.0
        base = min(self.backoff_s, RETRY_CAP_S)
        return backoff_delay(
            attempt - 1, base=base, cap=RETRY_CAP_S, jitter=0.5, rand=random.random()
        )
