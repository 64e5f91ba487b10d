"""Exponential backoff with full jitter, the reconnect policy of a simulated charger."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """``next_delay()`` grows ``initial * factor**n`` up to ``maximum`` and returns a
    random delay between half of that and all of it; ``reset()`` after a success."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return ceiling / 2 + self.rng.random() * ceiling / 2

    def reset(self) -> None:
        self.attempts = 0
