"""Sending commands to connected chargers in their own protocol version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import structlog

from edge.core.commands import Command, CommandOutcome, UnsupportedCommand
from edge.core.ids import ChargerId
from edge.ocpp.connection import CallFailed
from ocpp_handlers import v16, v201
from ocpp_handlers.schemas import SchemaViolation, Version

if TYPE_CHECKING:  # the server imports the local list check, which sends through here
    from edge.ocpp.server import OcppServer

log = structlog.get_logger(__name__)
_MODULES: Final = {Version.V16: v16, Version.V201: v201}


class ChargerOffline(Exception):
    """The charger is not connected."""


class CommandTimeout(Exception):
    """The charger did not answer in time."""


class InvalidCommand(Exception):
    """The command cannot be expressed for this charger (version or values)."""


async def send_command(
    server: OcppServer, charger_id: ChargerId, command: Command, wait: float | None = None
) -> CommandOutcome:
    """Send ``command`` and return the charger's answer.

    Raises :class:`ChargerOffline`, :class:`CommandTimeout`, :class:`InvalidCommand` or
    :class:`~edge.ocpp.connection.CallFailed` (the charger answered with a CALLERROR).
    """
    connection = server.connections.get(charger_id)
    if connection is None:
        raise ChargerOffline(charger_id)
    module = _MODULES[connection.version]
    try:
        action, payload = module.to_call(command)
        limit = wait if wait is not None else server.config.ocpp.call_timeout
        response = await connection.call(action, payload, limit)
    except UnsupportedCommand as err:
        raise InvalidCommand(str(err)) from err
    except SchemaViolation as err:
        raise InvalidCommand(err.description) from err
    except TimeoutError as err:
        server.metrics.commands.labels(type(command).__name__, "timeout").inc()
        log.warning("ocpp.command.timeout", charger=charger_id, command=type(command).__name__)
        raise CommandTimeout(charger_id) from err
    except ConnectionError as err:
        raise ChargerOffline(charger_id) from err
    except CallFailed:
        server.metrics.commands.labels(type(command).__name__, "callerror").inc()
        raise
    outcome: CommandOutcome = module.outcome(action, response)
    server.metrics.commands.labels(action, outcome.status).inc()
    log.info("ocpp.command.answered", charger=charger_id, action=action, status=outcome.status)
    return outcome
