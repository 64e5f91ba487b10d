"""The one retry policy: grows, caps, spreads retries, and starts over after a success."""

from __future__ import annotations

import random

import pytest

from common.backoff import Backoff, backoff_delay


@pytest.mark.parametrize("rand", [0.0, 0.3, 0.999])
def test_each_delay_lies_between_half_its_ceiling_and_the_ceiling(rand: float) -> None:
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (5, 16.0), (6, 30.0), (500, 30.0)]:
        delay = backoff_delay(attempt, base=0.5, cap=30.0, jitter=0.5, rand=rand)
        assert ceiling / 2 < delay <= ceiling or (rand == 0.0 and delay == ceiling)


def test_no_jitter_is_exact_and_full_jitter_may_reach_zero() -> None:
    assert backoff_delay(3, base=1.0, cap=60.0, jitter=0.0, rand=0.7) == 8.0
    assert backoff_delay(3, base=1.0, cap=60.0, jitter=1.0, rand=0.999) == pytest.approx(0.008)


@pytest.mark.parametrize(
    ("base", "cap", "jitter"), [(0.0, 1.0, 0.5), (2.0, 1.0, 0.5), (1.0, 2.0, 1.5)]
)
def test_a_policy_that_makes_no_sense_is_refused(base: float, cap: float, jitter: float) -> None:
    with pytest.raises(ValueError, match=r"need|jitter"):
        backoff_delay(0, base=base, cap=cap, jitter=jitter, rand=0.0)
    with pytest.raises(ValueError, match=r"need|jitter"):
        Backoff(base=base, cap=cap, jitter=jitter)


def test_a_loop_backs_off_further_then_starts_over_after_a_success() -> None:
    backoff = Backoff(base=1.0, cap=8.0, rng=random.Random(7))
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0]
    for ceiling in ceilings:
        assert ceiling / 2 <= backoff.next_delay() <= ceiling
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0


def test_clients_that_failed_together_do_not_retry_together() -> None:
    delays = {
        Backoff(base=1.0, cap=60.0, rng=random.Random(seed)).next_delay() for seed in range(50)
    }
    assert len(delays) == 50
