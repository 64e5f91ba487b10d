"""The words of every shipped locale: the default templates and the phrases they are built from.

One place per language, so a translator reads it top to bottom. Every shipped locale has
a template for each notified event type and words for every ``charging.failed`` code in
the contract (:data:`contract.events.FAILURE_CODES`): a test fails if one misses any.

The templates use phrase variables (``$vehicle``, ``$at_slot``, ``$period``, ``$cost``,
``$failure``, ``$released_why``) that :mod:`central.notification.templates` builds from
these words, so a message never shows a placeholder dash for what the site did not say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# The short text is the SMS / push body; email wraps it in EMAIL_FRAME.
TEXTS: Final[dict[str, dict[str, tuple[str, str]]]] = {
    "en": {
        "parking.reserved": (
            "Parking reserved: slot $slot_id",
            "Slot $slot_id at $site_id is reserved for $vehicle$period.",
        ),
        "parking.released": (
            "Parking reservation released",
            "Your reservation for $vehicle$at_slot ($site_id) ended at $event_time: $released_why.",
        ),
        "charging.started": (
            "Charging started",
            "Charging of $vehicle started at $started_at on charger $charger_id$at_slot ($site_id).",
        ),
        "charging.completed": (
            "Charging completed: $energy_kwh kWh",
            "Charging of $vehicle finished at $stopped_at on charger $charger_id$at_slot"
            " ($site_id): $energy_kwh kWh in $duration. Cost: $cost.",
        ),
        "charging.failed": (
            "Charging failed",
            "Charging of $vehicle on charger $charger_id ($site_id) failed at $event_time: $failure.",
        ),
    },
    "de": {
        "parking.reserved": (
            "Parkplatz reserviert: $slot_id",
            "Stellplatz $slot_id in $site_id ist für $vehicle reserviert$period.",
        ),
        "parking.released": (
            "Reservierung aufgehoben",
            "Ihre Reservierung für $vehicle$at_slot ($site_id) endete um $event_time: $released_why.",
        ),
        "charging.started": (
            "Ladevorgang gestartet",
            "Der Ladevorgang von $vehicle hat um $started_at an Ladepunkt $charger_id$at_slot"
            " ($site_id) begonnen.",
        ),
        "charging.completed": (
            "Ladevorgang beendet: $energy_kwh kWh",
            "Der Ladevorgang von $vehicle an Ladepunkt $charger_id$at_slot ($site_id) endete um"
            " $stopped_at: $energy_kwh kWh in $duration. Kosten: $cost.",
        ),
        "charging.failed": (
            "Ladevorgang fehlgeschlagen",
            "Der Ladevorgang von $vehicle an Ladepunkt $charger_id ($site_id) ist um $event_time"
            " fehlgeschlagen: $failure.",
        ),
    },
}

EMAIL_FRAME: Final[dict[str, str]] = {
    "en": "Hello,\n\n{text}\n\n-- evpark\n",
    "de": "Guten Tag,\n\n{text}\n\n-- evpark\n",
}


@dataclass(frozen=True)
class Words:
    """The phrases of one locale; ``{name}`` fields are filled in by the templates module."""

    your_vehicle: str
    at_slot: str  # {slot}
    period_from_until: str  # {start} {end}
    period_until: str  # {end}
    period_from: str  # {start}
    cost: str  # {amount} {currency}
    cost_unknown: str
    released: dict[str, str]  # a site's release reason -> why, in words; "" is the default
    failures: dict[str, str]  # a charging.failed code -> what went wrong, in words


WORDS: Final[dict[str, Words]] = {
    "en": Words(
        your_vehicle="your vehicle",
        at_slot=" at slot {slot}",
        period_from_until=" from {start} until {end}",
        period_until=" until {end}",
        period_from=" from {start}",
        cost="{amount} {currency}",
        cost_unknown="not known yet",
        released={
            "": "the reservation was released",
            "cancelled": "the reservation was cancelled",
            "released": "you ended it",
            "expired": "the reservation expired unused",
            "rejected": "the site refused the reservation",
        },
        failures={
            "RemoteStartRejected": "the charger refused to start",
            "RemoteStartTimeout": "the charger did not start charging in time",
            "ChargerOffline": "the charger is not connected",
            "TokenRefused": "your card or app authorization was refused",
            "ConnectorFault": "the charger reported a fault",
            "EVError": "your vehicle reported an error or stopped responding",
            "EndedBeforeCharging": "the charge ended before any energy was delivered",
            "Other": "something went wrong",
        },
    ),
    "de": Words(
        your_vehicle="Ihr Fahrzeug",
        at_slot=" auf Stellplatz {slot}",
        period_from_until=" von {start} bis {end}",
        period_until=" bis {end}",
        period_from=" ab {start}",
        cost="{amount} {currency}",
        cost_unknown="noch nicht bekannt",
        released={
            "": "die Reservierung wurde aufgehoben",
            "cancelled": "die Reservierung wurde storniert",
            "released": "Sie haben sie beendet",
            "expired": "die Reservierung ist ungenutzt abgelaufen",
            "rejected": "der Standort hat die Reservierung abgelehnt",
        },
        failures={
            "RemoteStartRejected": "der Ladepunkt hat den Start abgelehnt",
            "RemoteStartTimeout": "der Ladepunkt hat nicht rechtzeitig mit dem Laden begonnen",
            "ChargerOffline": "der Ladepunkt ist nicht verbunden",
            "TokenRefused": "Ihre Karte oder App-Freigabe wurde abgelehnt",
            "ConnectorFault": "der Ladepunkt hat einen Fehler gemeldet",
            "EVError": "Ihr Fahrzeug hat einen Fehler gemeldet oder antwortet nicht",
            "EndedBeforeCharging": "der Ladevorgang endete, bevor Energie geflossen ist",
            "Other": "ein Fehler ist aufgetreten",
        },
    ),
}
