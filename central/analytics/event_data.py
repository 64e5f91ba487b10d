"""What analytics reads of an event's ``data``: each field as the contract defines it
(:mod:`contract.events`), one field at a time.

Analytics counts every event it is given, also one a strict reader would refuse: a
completed session without its charger's id, or with an energy that is not a number, is
still a completed session. So it does not parse ``data`` whole
(:func:`contract.events.parse_data` refuses such an event): it validates each field it
reads alone, against that field of the contract model of the event's type, and a field
that is missing or does not fit reads as ``None``; the event counts without it. Values
are taken strictly, as analytics always has: a number is a JSON number, not a string or
a boolean that reads as one. Times are read with :mod:`common.timestamps` (RFC 3339 with
an offset; the contract's pydantic type would also take a count of seconds).

"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from common.timestamps import timestamp_or_none
from contract.envelope import CloudEvent
from contract.events import DATA_MODELS, Data


@cache
def _adapter(model: type[Data], name: str) -> TypeAdapter[Any] | None:
    found = model.model_fields.get(name)
    return None if found is None else TypeAdapter(found.rebuild_annotation())


def _defined(event: CloudEvent, name: str) -> TypeAdapter[Any] | None:
    """The validator of ``name`` in the contract model of the event's type, if it has one."""
    model = DATA_MODELS.get(event.type)
    return None if model is None else _adapter(model, name)


def field(event: CloudEvent, name: str) -> object:
    """A field of the event's data as its contract type, or None (missing, not fitting,
    or not a field of that type)."""
    adapter = _defined(event, name)
    value = event.data.get(name)
    if adapter is None or value is None:
        return None
    try:
        return adapter.validate_python(value, strict=True)
    except ValidationError:
        return None


def text(event: CloudEvent, name: str) -> str | None:
    """A non-empty text field (an id, a type)."""
    value = field(event, name)
    return value if isinstance(value, str) and value else None


def number(event: CloudEvent, name: str) -> float | None:
    """A number field (the contract's figures are floats: an integer reads as one)."""
    value = field(event, name)
    return value if isinstance(value, float) else None


def instant(event: CloudEvent, name: str) -> datetime | None:
    """A time field, in UTC (:func:`common.timestamps.timestamp_or_none`)."""
    return timestamp_or_none(as_sent(event, name)) if _defined(event, name) else None


def as_sent(event: CloudEvent, name: str) -> object:
    """A field exactly as sent, unchecked: only for a log line showing what a site said."""
    return event.data.get(name)
