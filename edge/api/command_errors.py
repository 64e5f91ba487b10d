"""A charger command's failures as the local API answers them (docs/local-api.md)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fastapi import HTTPException

from edge.ocpp.charger_calls import ChargerOffline, CommandTimeout, InvalidCommand
from edge.ocpp.connection import CallFailed


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
