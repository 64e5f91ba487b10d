"""Retry delays: exponential backoff with full jitter (plain code, no I/O)."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int, base: float = 0.1, cap: float = 30.0, rng: random.Random | None = None
) -> float:
    """Delay before retry number ``attempt`` (1-based): uniform in [0, min(cap, base*2^(n-1))]."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(ceiling / 2, ceiling)
