"""User preferences: who hears about which event, where, and when (quiet hours).

Plain data and functions, no I/O; the clock is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from central.notification.model import (
    CHANNELS,
    NOTIFIED_EVENT_TYPES,
    Channel,
    NotifiedData,
    UserId,
)


@dataclass(frozen=True)
class QuietHours:
    """A daily local-time window ``[start, end)``; ``start > end`` spans midnight."""

    start: time
    end: time
    timezone: str

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("quiet hours need start != end")
        ZoneInfo(self.timezone)  # raises for an unknown zone

    def ends_after(self, now: datetime) -> datetime | None:
        """When ``now`` falls in quiet hours, the (UTC) instant they end; else ``None``."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        day = local.date()
        if self.start < self.end:
            if not self.start <= clock < self.end:
                return None
            end_day = day
        elif clock >= self.start:
            end_day = day + timedelta(days=1)
        elif clock < self.end:
            end_day = day
        else:
            return None
        end = datetime.combine(end_day, self.end, tzinfo=zone).astimezone(UTC)
        return end if end > now else None


@dataclass(frozen=True)
class ChannelSetting:
    enabled: bool = False
    address: str | None = None

    @property
    def usable(self) -> bool:
        return self.enabled and bool(self.address)


@dataclass(frozen=True)
class Preferences:
    user_id: UserId
    locale: str = "en"
    timezone: str = "UTC"
    channels: Mapping[Channel, ChannelSetting] = field(default_factory=dict)
    events: frozenset[str] = frozenset(NOTIFIED_EVENT_TYPES)
    vehicle_ids: frozenset[str] = frozenset()
    id_tags: frozenset[str] = frozenset()
    quiet_hours: QuietHours | None = None

    def usable_channels(self) -> list[tuple[Channel, str]]:
        """The enabled channels with an address, in a stable order."""
        found: list[tuple[Channel, str]] = []
        for channel in CHANNELS:
            setting = self.channels.get(channel)
            if setting is not None and setting.usable and setting.address is not None:
                found.append((channel, setting.address))
        return found

    def wants(self, event_type: str) -> bool:
        return event_type in self.events


@dataclass(frozen=True)
class Concerned:
    """Who an event is about: its driver (a central user id), else its vehicle or id tag,
    which users register in their preferences."""

    driver_ids: frozenset[str] = frozenset()
    vehicle_ids: frozenset[str] = frozenset()
    id_tags: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.driver_ids or self.vehicle_ids or self.id_tags)


def concerned_by(data: NotifiedData) -> Concerned:
    """Who an event is about: its subject (``driver_id``, ``vehicle_id``, ``id_tag``)."""
    return Concerned(_one(data.driver_id), _one(data.vehicle_id), _one(data.id_tag))


def _one(value: str | None) -> frozenset[str]:
    # a 2.0.1 charger reports "" for a charge that needed no authorization: nobody's tag
    return frozenset({value}) if value else frozenset()


def is_recipient(prefs: Preferences, who: Concerned) -> bool:
    """An event that names its driver concerns that user only: another user who once
    listed the vehicle (a previous owner, a second driver of the car) or the card is not
    told about this driver's charge. An event that names no driver (a version 1 event,
    a card the site does not know the owner of) concerns the users listing its vehicle
    or its id tag."""
    if who.driver_ids:
        return prefs.user_id in who.driver_ids
    return bool(prefs.vehicle_ids & who.vehicle_ids) or bool(prefs.id_tags & who.id_tags)


def recipients(candidates: Iterable[Preferences], who: Concerned) -> list[Preferences]:
    """The distinct users among ``candidates`` an event concerns, by user id."""
    seen: dict[str, Preferences] = {}
    for prefs in candidates:
        if is_recipient(prefs, who):
            seen.setdefault(prefs.user_id, prefs)
    return [seen[key] for key in sorted(seen)]


def deliver_at(prefs: Preferences, now: datetime, *, urgent: bool) -> datetime:
    """When a message may go out: now, or the end of the user's quiet hours if not urgent."""
    if urgent or prefs.quiet_hours is None:
        return now
    return prefs.quiet_hours.ends_after(now) or now
