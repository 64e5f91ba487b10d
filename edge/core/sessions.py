"""The sessions in progress, indexed every way the hot path looks them up.

Chargers name a session by transaction id, the API and the slot model by session id, and
2.0.1 meter values or a status change by charger and EVSE: each is a dictionary lookup
here, never a scan, whatever the number of chargers.
"""

from __future__ import annotations

from collections.abc import Iterator

from edge.core.ids import ChargerId, SessionId
from edge.core.model import Session


class ActiveSessions:
    def __init__(self, sessions: list[Session] | None = None) -> None:
        self._by_transaction: dict[tuple[ChargerId, str], Session] = {}
        self._by_id: dict[SessionId, Session] = {}
        self._by_evse: dict[tuple[ChargerId, int], Session] = {}
        for session in sessions or []:
            self.add(session)

    def add(self, session: Session) -> None:
        self._by_transaction[(session.charger_id, session.transaction_id)] = session
        self._by_id[session.id] = session
        self._by_evse[(session.charger_id, session.evse_id)] = session

    def remove(self, session: Session) -> None:
        self._by_transaction.pop((session.charger_id, session.transaction_id), None)
        self._by_id.pop(session.id, None)
        if self._by_evse.get((session.charger_id, session.evse_id)) is session:
            del self._by_evse[(session.charger_id, session.evse_id)]

    def by_transaction(self, charger_id: ChargerId, transaction_id: str) -> Session | None:
        return self._by_transaction.get((charger_id, transaction_id))

    def by_id(self, session_id: str) -> Session | None:
        return self._by_id.get(SessionId(session_id))

    def on(self, charger_id: ChargerId, evse_id: int) -> Session | None:
        return self._by_evse.get((charger_id, evse_id))

    def of_charger(self, charger_id: ChargerId) -> list[Session]:
        return [s for s in self._by_id.values() if s.charger_id == charger_id]

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)
