"""Sharing what is left under linear limits: progressive filling, max-min fair by weight.

Every variable starts at its floor and all that may still grow grow together, each in
proportion to its weight, until a limit is full (every variable in it stops) or the
variable reaches its cap. The result is the weighted max-min fair share: nobody could
have more without taking it from someone who has less (by weight).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

EPSILON: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Limit:
    """``sum(coefficients[k] * x[k]) <= bound``; coefficients are positive."""

    name: str
    coefficients: Mapping[str, float]
    bound: float

    def used(self, x: Mapping[str, float]) -> float:
        return sum(a * x.get(k, 0.0) for k, a in self.coefficients.items())

    def fits(self, x: Mapping[str, float]) -> bool:
        return self.used(x) <= self.bound + EPSILON * max(1.0, abs(self.bound))


def fill(
    x: dict[str, float],
    growing: Sequence[str],
    caps: Mapping[str, float],
    weights: Mapping[str, float],
    limits: Sequence[Limit],
) -> set[str]:
    """Grow ``x[k]`` for ``k`` in ``growing`` in place; the names of the limits that
    became full. ``x`` must fit every limit on entry."""
    free = {k for k in growing if x[k] < caps[k] and weights[k] > 0}
    full: set[str] = set()
    while free:
        step = min(((caps[k] - x[k]) / weights[k] for k in free), default=0.0)
        for limit in limits:
            rate = sum(a * weights[k] for k, a in limit.coefficients.items() if k in free)
            if rate > 0:
                step = min(step, max(0.0, limit.bound - limit.used(x)) / rate)
        for k in free:
            x[k] += step * weights[k]
        stopped = {k for k in free if x[k] >= caps[k] - EPSILON * max(1.0, caps[k])}
        for limit in limits:
            slack = limit.bound - limit.used(x)
            if slack <= EPSILON * max(1.0, abs(limit.bound)):
                touched = {k for k in free if limit.coefficients.get(k, 0.0) > 0}
                if touched:
                    full.add(limit.name)
                    stopped |= touched
        if not stopped:  # a step of zero with nothing full cannot happen; never loop
            break
        free -= stopped
    return full
