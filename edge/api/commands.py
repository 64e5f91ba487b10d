"""A charger command from the local API: the charger it names, the command sent, and its
failures as HTTP answers (docs/local-api.md)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fastapi import HTTPException

from edge.core import commands as cmd
from edge.core.ids import ChargerId
from edge.core.model import Charger
from edge.ocpp.charger_calls import ChargerOffline, CommandTimeout, InvalidCommand, send_command
from edge.ocpp.connection import CallFailed
from edge.ocpp.server import OcppServer
from edge.services.site import Site


def known_charger(site: Site, charger_id: str) -> Charger:
    """The site's charger of that id; 404 if there is none."""
    charger = site.chargers.get(ChargerId(charger_id))
    if charger is None:
        raise HTTPException(404, f"no charger {charger_id!r}")
    return charger


@contextlib.contextmanager
def command_errors(charger_id: str) -> Iterator[None]:
    """409 not connected, 504 no answer in time, 422 not expressible for the charger's
    version, 502 a CALLERROR."""
    try:
        yield
    except ChargerOffline as err:
        raise HTTPException(409, f"charger {charger_id!r} is not connected") from err
    except CommandTimeout as err:
        raise HTTPException(504, f"charger {charger_id!r} did not answer in time") from err
    except InvalidCommand as err:
        raise HTTPException(422, str(err)) from err
    except CallFailed as err:
        raise HTTPException(
            502, f"charger answered with CALLERROR {err.code}: {err.description}"
        ) from err


async def answer_of(
    server: OcppServer, charger_id: str, command: cmd.Command
) -> cmd.CommandOutcome:
    """The charger's answer, its failures as :func:`command_errors` says."""
    with command_errors(charger_id):
        return await send_command(server, ChargerId(charger_id), command)


async def command_answer(
    site: Site, server: OcppServer, charger_id: str, command: cmd.Command
) -> dict[str, Any]:
    """The local API's answer to a command: the charger's status and its whole answer."""
    known_charger(site, charger_id)
    outcome = await answer_of(server, charger_id, command)
    return {"charger_id": charger_id, "status": outcome.status, "response": outcome.detail}
