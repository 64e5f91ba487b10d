"""The order in which new limits reach the chargers, so no moment exceeds a limit.

A charger follows a new limit some time after it accepted it, and a limit may be
refused. So the limits that go down are sent first; the ones that go up only once every
lower one was accepted. If one was refused, the manager decides again with that charger
uncontrolled before anything is raised: a raise is never sent on the hope that a lower
elsewhere will be followed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

# A limit this close to the one a charger holds is not worth a message.
UNCHANGED_W: Final = 1.0


@dataclass(frozen=True, slots=True)
class Changes:
    lower: dict[str, float]  # send these first, all of them
    raise_: dict[str, float]  # then these, once every lower one was accepted

    def __bool__(self) -> bool:
        return bool(self.lower or self.raise_)


def changes(held: Mapping[str, float | None], wanted: Mapping[str, float]) -> Changes:
    """From the limits the chargers hold (by session; None: not known, as after a
    reconnect) to the wanted ones. An unknown holding counts as the highest, so its new
    limit is sent with the lower ones."""
    lower: dict[str, float] = {}
    raise_: dict[str, float] = {}
    for key, limit in wanted.items():
        current = held.get(key)
        if current is None or limit < current - UNCHANGED_W:
            lower[key] = limit
        elif limit > current + UNCHANGED_W:
            raise_[key] = limit
    return Changes(lower, raise_)
