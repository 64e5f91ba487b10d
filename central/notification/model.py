"""Names shared by the notification service's core and adapters."""

from __future__ import annotations

from typing import Final, Literal, NewType

UserId = NewType("UserId", str)

Channel = Literal["email", "sms", "push"]
CHANNELS: Final[tuple[Channel, ...]] = ("email", "sms", "push")

#: Event types the service turns into notifications.
NOTIFIED_EVENT_TYPES: Final[tuple[str, ...]] = (
    "parking.reserved",
    "parking.released",
    "charging.started",
    "charging.completed",
    "charging.failed",
)

#: Urgent events bypass quiet hours; all others wait for them to end.
URGENT_EVENT_TYPES: Final[frozenset[str]] = frozenset({"charging.failed"})
