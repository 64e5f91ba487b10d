"""Message templates: defaults per event type, channel and locale; overrides; rendering.

Templates use :class:`string.Template` syntax (``$vehicle_id`` or ``${vehicle_id}``): no
code runs, and only the names in :data:`TEMPLATE_VARIABLES` are allowed. The event's own
fields show as the site reported them (``-`` where it did not); the phrase variables
(``$vehicle``, ``$at_slot``, ``$period``, ``$cost``, ``$failure``, ``$released_why``) are
built in the message's language from :mod:`central.notification.texts`, so the default
templates read well whatever the site left out. Every time is in the user's zone, with
the zone's abbreviation.
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
from central.notification.texts import EMAIL_FRAME, TEXTS, WORDS, Words
from central.pricing import Cost
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
        "driver_id",
        "evse_id",
        "code",
        # phrases in the message's language (central.notification.texts)
        "vehicle",
        "at_slot",
        "period",
        "cost",
        "failure",
        "released_why",
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


def _defaults() -> dict[TemplateKey, MessageTemplate]:
    found: dict[TemplateKey, MessageTemplate] = {}
    for locale, texts in TEXTS.items():
        for event_type, (subject, text) in texts.items():
            for channel in CHANNELS:
                body = EMAIL_FRAME[locale].format(text=text) if channel == "email" else text
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
    """``YYYY-MM-DD HH:MM ZONE`` in the user's zone (a four-digit year even for year 1),
    with the zone's abbreviation (``CET``, ``UTC``) so a reader abroad is not misled."""
    local = in_zone(at, zone)
    return f"{local.isoformat(sep=' ', timespec='minutes')[:16]} {local.tzname() or ''}".rstrip()


def words_for(locale: str, fallback_locale: str = "en") -> Words:
    """The phrases of the first shipped locale among ``locale``'s candidates."""
    for candidate in locale_candidates(locale, fallback_locale):
        if candidate in WORDS:
            return WORDS[candidate]
    return WORDS["en"]


def _phrases(
    event_type: str, data: Mapping[str, object], context: Mapping[str, str], words: Words
) -> dict[str, str]:
    """The phrase variables: what the default templates say around the event's fields."""
    known = {key: value for key, value in context.items() if value != "-"}
    period = ""
    if "starts_at" in known and "ends_at" in known:
        period = words.period_from_until.format(start=known["starts_at"], end=known["ends_at"])
    elif "ends_at" in known:
        period = words.period_until.format(end=known["ends_at"])
    elif "starts_at" in known:
        period = words.period_from.format(start=known["starts_at"])
    reason = str(data.get("reason") or "").strip()
    failure = words.failures.get(str(data.get("code") or "Other"), words.failures["Other"])
    if data.get("code", "Other") == "Other" and reason:
        failure = reason  # the site's own words say more than "something went wrong"
    return {
        "vehicle": known.get("vehicle_id", words.your_vehicle),
        "at_slot": words.at_slot.format(slot=known["slot_id"]) if "slot_id" in known else "",
        "period": period,
        "failure": failure,
        "released_why": words.released.get(reason.lower(), reason) or words.released[""],
        "cost": words.cost_unknown if event_type == "charging.completed" else "-",
    }


def _money(cost: Cost, words: Words) -> str:
    return words.cost.format(amount=f"{cost.total:.2f}", currency=cost.currency)


def template_context(
    *,
    event_type: str,
    site_id: str,
    event_time: datetime,
    data: Mapping[str, object],
    user_id: str,
    timezone: str,
    locale: str = "en",
    cost: Cost | None = None,
) -> dict[str, str]:
    """The values a template may use; times in the user's zone, energy in kWh, phrases
    in ``locale``. ``data``: an event's :func:`display_values` (times may also be RFC
    3339 text); ``cost``: what a completed session costs (None: not known yet)."""
    zone = ZoneInfo(timezone)
    context = dict.fromkeys(TEMPLATE_VARIABLES, "-")
    for key in TEMPLATE_VARIABLES:
        value = data.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and value != "":
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
    words = words_for(locale)
    context.update(_phrases(event_type, data, context, words))
    if cost is not None and event_type == "charging.completed":
        context["cost"] = _money(cost, words)
    return context


SUBJECT_LIMIT: Final = 200


def render(template: MessageTemplate, context: Mapping[str, str]) -> Rendered:
    """Fill in a template; the subject becomes one line of at most ``SUBJECT_LIMIT``
    characters, whatever the event data holds (it ends up in a mail header)."""
    subject = " ".join(Template(template.subject).safe_substitute(context).split())
    if len(subject) > SUBJECT_LIMIT:
        subject = subject[: SUBJECT_LIMIT - 1] + "…"
    return Rendered(subject=subject, body=Template(template.body).safe_substitute(context))
