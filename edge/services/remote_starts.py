"""Remote starts waiting for their session to begin, found by the token they sent.

A remote start from central is answered ``accepted`` only once a session has begun with
its token (shared design of issue 12): the command registers here before it asks the
charger, and the charging sessions (:mod:`edge.services.sessions`) tell this registry of
every session that begins, accepted or refused. The registry also names the command
behind a token, so a refusal's ``charging.failed`` carries that ``command_id``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from edge.core.model import Session


@dataclass(slots=True)
class _Waiting:
    command_id: str
    began: asyncio.Future[Session]


class RemoteStarts:
    def __init__(self) -> None:
        self._by_tag: dict[str, _Waiting] = {}

    def expect(self, id_tag: str, command_id: str) -> asyncio.Future[Session]:
        """A future for the session that begins with ``id_tag``; :meth:`forget` it after."""
        waiting = _Waiting(command_id, asyncio.get_running_loop().create_future())
        self._by_tag[id_tag] = waiting
        return waiting.began

    def command_of(self, id_tag: str | None) -> str | None:
        """The remote start waiting for ``id_tag``, if one is."""
        waiting = self._by_tag.get(id_tag) if id_tag else None
        return waiting.command_id if waiting else None

    def began(self, session: Session) -> None:
        """A session began (stored already): the remote start waiting for its tag learns it."""
        waiting = self._by_tag.get(session.id_tag) if session.id_tag else None
        if waiting is not None and not waiting.began.done():
            waiting.began.set_result(session)

    def forget(self, id_tag: str, command_id: str) -> None:
        waiting = self._by_tag.get(id_tag)
        if waiting is not None and waiting.command_id == command_id:
            del self._by_tag[id_tag]
