"""Names shared by the notification service's core and adapters, and the events it reads.

The service reads an event's ``data`` only through its type's model in the contract
(:mod:`contract.events`): a field is there with its contract type, or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final, Literal, NewType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field

from contract.envelope import CloudEvent
from contract.events import (
    ChargingCompleted,
    ChargingFailed,
    ChargingStarted,
    ParkingReleased,
    ParkingReserved,
    parse_data,
)

UserId = NewType("UserId", str)


def known_zone(value: str) -> str:
    """``value`` if it names an IANA time zone; ValueError (for pydantic) if not."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {value!r}") from err
    return value


#: A time zone a user or a rate names (``Europe/Berlin``, ``UTC``).
ZoneName = Annotated[str, Field(max_length=64), AfterValidator(known_zone)]

Channel = Literal["email", "sms", "push"]
CHANNELS: Final[tuple[Channel, ...]] = ("email", "sms", "push")

NotifiedData = (
    ParkingReserved | ParkingReleased | ChargingStarted | ChargingCompleted | ChargingFailed
)
NOTIFIED_MODELS: Final[Mapping[str, type[NotifiedData]]] = {
    model.TYPE: model
    for model in (
        ParkingReserved,
        ParkingReleased,
        ChargingStarted,
        ChargingCompleted,
        ChargingFailed,
    )
}
#: Event types the service turns into notifications.
NOTIFIED_EVENT_TYPES: Final[tuple[str, ...]] = tuple(NOTIFIED_MODELS)

#: Urgent events bypass quiet hours; all others wait for them to end.
URGENT_EVENT_TYPES: Final[frozenset[str]] = frozenset({"charging.failed"})


def notified_data(event: CloudEvent) -> NotifiedData | None:
    """The data of an event the service notifies about, read through its contract; None
    for any other type. Raises :class:`pydantic.ValidationError` for data that does not
    fit (the bus's callers log and drop such an event: redelivery would not mend it)."""
    model = NOTIFIED_MODELS.get(event.type)
    return None if model is None else parse_data(model, event)
