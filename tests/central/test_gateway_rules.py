"""Gateway rules without I/O: token bucket and circuit breaker, on a fake clock."""

from __future__ import annotations

from central.infra.resilience import (
    Breaker,
    breaker_allow,
    breaker_record,
    breaker_retry_after,
    bucket_take,
)


def test_token_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    bucket = None
    for _ in range(3):
        bucket, wait = bucket_take(bucket, now=0.0, rate=1.0, burst=3)
        assert wait == 0.0
    bucket, wait = bucket_take(bucket, now=0.0, rate=1.0, burst=3)
    assert wait == 1.0
    bucket, wait = bucket_take(bucket, now=0.5, rate=1.0, burst=3)
    assert wait == 0.5
    bucket, wait = bucket_take(bucket, now=1.0, rate=1.0, burst=3)
    assert wait == 0.0
    # a long pause refills up to the burst only
    bucket, _ = bucket_take(bucket, now=100.0, rate=1.0, burst=3)
    assert bucket.tokens == 2.0


def test_breaker_opens_after_failures_and_half_opens_after_the_reset_time() -> None:
    b = Breaker()
    for t in range(3):
        b, allowed = breaker_allow(b, float(t), reset_after=10)
        assert allowed
        b = breaker_record(b, ok=False, now=float(t), threshold=3)
    assert b.mode == "open"
    b, allowed = breaker_allow(b, 5.0, reset_after=10)
    assert not allowed
    assert breaker_retry_after(b, 5.0, 10) == 7.0
    b, allowed = breaker_allow(b, 12.0, reset_after=10)
    assert allowed
    assert b.mode == "half_open"
    # only one trial call while half-open
    _, second = breaker_allow(b, 12.1, reset_after=10)
    assert not second
    reopened = breaker_record(b, ok=False, now=12.2, threshold=3)
    assert reopened.mode == "open"
    assert reopened.opened_at == 12.2
    closed = breaker_record(b, ok=True, now=12.2, threshold=3)
    assert closed == Breaker()


def test_success_resets_the_failure_count() -> None:
    b = breaker_record(Breaker(), ok=False, now=0, threshold=3)
    b = breaker_record(b, ok=False, now=0, threshold=3)
    b = breaker_record(b, ok=True, now=0, threshold=3)
    b = breaker_record(b, ok=False, now=0, threshold=3)
    assert b.mode == "closed"
    assert b.failures == 1
