"""What the site tells its observers once a change is committed.

The web UI's live views and the slot model follow the site through these notices, not
through the store. Both halves of the site service (chargers in :mod:`edge.services.site`,
sessions in :mod:`edge.services.sessions`) send them, without knowing who listens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edge.core.ids import ChargerId, SessionId


@dataclass(frozen=True, slots=True)
class SiteChange:
    """What changed, for live views and the slot model (never persisted as such)."""

    kind: str  # "charger", "evse", "session" (started or ended), "meter" (new readings)
    charger_id: ChargerId
    evse_id: int | None = None
    session_id: SessionId | None = None


Observer = Callable[[SiteChange], None]
