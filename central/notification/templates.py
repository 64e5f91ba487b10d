"""Message templates: defaults per event type, channel and locale; overrides; rendering.

Templates use :class:`string.Template` syntax (``$vehicle_id`` or ``${vehicle_id}``): no
code runs, and only the names in :data:`TEMPLATE_VARIABLES` are allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from string import Template
from typing import Final
from zoneinfo import ZoneInfo

from central.infra.saturating import in_zone
from central.notification.model import CHANNELS, NOTIFIED_EVENT_TYPES, Channel
from common.timestamps import timestamp_or_none
from contract.events import EventData

TEMPLATE_VARIABLES: Final[frozenset[str]] = frozenset(
    {
        "site_id",
        "user_id",
        "vehicle_id",
        "id_tag",
        "slot_id",
        "reservation_id",
        "starts_at",
        "ends_at",
        "charger_id",
        "session_id",
        "started_at",
        "stopped_at",
        "duration",
        "energy_kwh",
        "reason",
        "event_time",
    }
)

_TIME_FIELDS: Final = ("starts_at", "ends_at", "started_at", "stopped_at")


@dataclass(frozen=True)
class MessageTemplate:
    subject: str
    body: str


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


TemplateKey = tuple[str, Channel, str]
"""(event_type, channel, locale)"""


class TemplateError(ValueError):
    """A template uses unknown placeholders or bad ``$`` syntax."""


def check_template(text: str) -> None:
    template = Template(text)
    if not template.is_valid():
        raise TemplateError("invalid placeholder syntax; use $name or ${name}, and $$ for $")
    unknown = sorted(set(template.get_identifiers()) - TEMPLATE_VARIABLES)
    if unknown:
        raise TemplateError(
            f"unknown placeholders {unknown}; allowed: {sorted(TEMPLATE_VARIABLES)}"
        )


# The short text is the SMS / push body; email wraps it in a greeting.
_TEXTS: Final[dict[str, dict[str, tuple[str, str]]]] = {
    "en": {
        "parking.reserved": (
            "Parking reserved: slot $slot_id",
            "Slot $slot_id at $site_id is reserved for $vehicle_id from $starts_at to $ends_at.",
        ),
        "parking.released": (
            "Parking reservation released",
            "Your reservation of slot $slot_id at $site_id for $vehicle_id was released ($reason).",
        ),
        "charging.started": (
            "Charging started",
            "Charging of $vehicle_id started at $started_at on charger $charger_id ($site_id).",
        ),
        "charging.completed": (
            "Charging completed: $energy_kwh kWh",
            "Charging of $vehicle_id finished at $stopped_at: $energy_kwh kWh in $duration ($reason).",
        ),
        "charging.failed": (
            "Charging failed",
            "Charging on charger $charger_id at $site_id failed: $reason.",
        ),
    },
    "de": {
        "parking.reserved": (
            "Parkplatz reserviert: $slot_id",
            "Stellplatz $slot_id in $site_id ist für $vehicle_id von $starts_at bis $ends_at reserviert.",
        ),
        "parking.released": (
            "Reservierung aufgehoben",
            "Ihre Reservierung von Stellplatz $slot_id in $site_id für $vehicle_id wurde aufgehoben ($reason).",
        ),
        "charging.started": (
            "Ladevorgang gestartet",
            "Der Ladevorgang von $vehicle_id hat um $started_at an Ladepunkt $charger_id ($site_id) begonnen.",
        ),
        "charging.completed": (
            "Ladevorgang beendet: $energy_kwh kWh",
            "Der Ladevorgang von $vehicle_id endete um $stopped_at: $energy_kwh kWh in $duration ($reason).",
        ),
        "charging.failed": (
            "Ladevorgang fehlgeschlagen",
            "Der Ladevorgang an Ladepunkt $charger_id in $site_id ist fehlgeschlagen: $reason.",
        ),
    },
}

_EMAIL_FRAME: Final[dict[str, str]] = {
    "en": "Hello,\n\n{text}\n\n-- evpark\n",
    "de": "Guten Tag,\n\n{text}\n\n-- evpark\n",
}


def _defaults() -> dict[TemplateKey, MessageTemplate]:
    found: dict[TemplateKey, MessageTemplate] = {}
    for locale, texts in _TEXTS.items():
        for event_type, (subject, text) in texts.items():
            for channel in CHANNELS:
                body = _EMAIL_FRAME[locale].format(text=text) if channel == "email" else text
                found[(event_type, channel, locale)] = MessageTemplate(subject, body)
    return found


DEFAULT_TEMPLATES: Final[Mapping[TemplateKey, MessageTemplate]] = _defaults()
assert {key[0] for key in DEFAULT_TEMPLATES} == set(NOTIFIED_EVENT_TYPES)


def locale_candidates(locale: str, fallback: str) -> list[str]:
    """``de-AT`` -> ``["de-AT", "de", fallback]`` without repeats."""
    found: list[str] = []
    for candidate in (locale, locale.split("-")[0], fallback, fallback.split("-")[0]):
        if candidate and candidate not in found:
            found.append(candidate)
    return found


def resolve_template(
    overrides: Mapping[TemplateKey, MessageTemplate],
    event_type: str,
    channel: Channel,
    locale: str,
    *,
    fallback_locale: str = "en",
) -> MessageTemplate | None:
    """The template for a message: for each locale candidate, an override before a default."""
    for candidate in locale_candidates(locale, fallback_locale):
        key = (event_type, channel, candidate)
        found = overrides.get(key) or DEFAULT_TEMPLATES.get(key)
        if found is not None:
            return found
    return None


def _format_duration(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def display_values(data: EventData) -> dict[str, object]:
    """What an event gives its templates: the fields its producer set (a field left to the
    contract's default, such as an empty ``reason``, shows as ``-``), as the contract
    typed them (times as datetimes, kept as reported: :func:`_local` places them)."""
    return {name: getattr(data, name) for name in data.model_fields_set}


def _time(value: object) -> datetime | None:
    if isinstance(value, datetime):  # read through the contract: aware already
        return value
    return timestamp_or_none(value)


def _local(at: datetime, zone: ZoneInfo) -> str:
    """``YYYY-MM-DD HH:MM`` in the user's zone (a four-digit year even for year 1)."""
    return in_zone(at, zone).isoformat(sep=" ", timespec="minutes")[:16]


def template_context(
    *,
    event_type: str,
    site_id: str,
    event_time: datetime,
    data: Mapping[str, object],
    user_id: str,
    timezone: str,
) -> dict[str, str]:
    """The values a template may use; times in the user's zone, energy in kWh. ``data``:
    an event's :func:`display_values` (times may also be RFC 3339 text)."""
    zone = ZoneInfo(timezone)
    context = dict.fromkeys(TEMPLATE_VARIABLES, "-")
    for key in TEMPLATE_VARIABLES:
        value = data.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            context[key] = str(value)
    for key in _TIME_FIELDS:
        parsed = _time(data.get(key))
        if parsed is not None:
            context[key] = _local(parsed, zone)
    energy = data.get("energy_wh")
    if isinstance(energy, int | float) and not isinstance(energy, bool):
        context["energy_kwh"] = f"{energy / 1000:.2f}"
    started = _time(data.get("started_at"))
    stopped = _time(data.get("stopped_at"))
    if started is not None and stopped is not None:
        context["duration"] = _format_duration((stopped - started).total_seconds())
    context["site_id"] = site_id
    context["user_id"] = user_id
    context["event_time"] = _local(event_time, zone)
    if event_type == "charging.failed" and context["reason"] == "-":
        context["reason"] = "unknown"
    return context


SUBJECT_LIMIT: Final = 200


def render(template: MessageTemplate, context: Mapping[str, str]) -> Rendered:
    """Fill in a template; the subject becomes one line of at most ``SUBJECT_LIMIT``
    characters, whatever the event data holds (it ends up in a mail header)."""
    subject = " ".join(Template(template.subject).safe_substitute(context).split())
    if len(subject) > SUBJECT_LIMIT:
        subject = subject[: SUBJECT_LIMIT - 1] + "…"
    return Rendered(subject=subject, body=Template(template.body).safe_substitute(context))
