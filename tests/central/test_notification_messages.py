"""What a driver is told and who: the subject of version 2 events, the shipped locales'
texts, the cost of a completed session, reservation and failure messages in words."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from central.notification.costs import session_cost
from central.notification.model import CHANNELS, NOTIFIED_EVENT_TYPES, UserId
from central.notification.planning import PlannedNotification, plan
from central.notification.preferences import ChannelSetting, Preferences
from central.notification.templates import DEFAULT_TEMPLATES, TEMPLATE_VARIABLES, check_template
from central.notification.texts import TEXTS, WORDS
from contract.envelope import CloudEvent
from contract.events import (
    FAILURE_CODES,
    ChargingCompleted,
    ChargingFailed,
    ChargingStarted,
    EventData,
    ParkingReleased,
    ParkingReserved,
    new_event,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SUBJECT: dict[str, Any] = {"vehicle_id": "EV-1", "driver_id": "alice", "id_tag": "A1B2C3"}
RATE = {
    "site_id": "site-a",
    "currency": "EUR",
    "energy_price_per_kwh": "0.40",
    "parking_price_per_hour": "0",
    "idle_fee_per_minute": "0",
    "idle_grace_minutes": 0,
    "timezone": "Europe/Berlin",
    "tou_windows": [],
    "updated_at": "2026-03-01T00:00:00Z",
}


def v2(data: EventData) -> CloudEvent:
    """``data`` as the edge sends it: a version 2 event with its dataschema."""
    return new_event(data, site_id="site-a", time=NOW, sequence=1)


def user(user_id: str = "alice", **overrides: Any) -> Preferences:
    values: dict[str, Any] = {
        "user_id": UserId(user_id),
        "timezone": "Europe/Berlin",
        "channels": {"sms": ChannelSetting(True, "+4915112345678")},
    }
    values.update(overrides)
    return Preferences(**values)


def sms(event: CloudEvent, prefs: Preferences) -> PlannedNotification:
    [only] = plan(event, [prefs], {}, NOW)
    return only


def completed(**overrides: Any) -> ChargingCompleted:
    values: dict[str, Any] = {
        "session_id": "s-1",
        "charger_id": "CP-1",
        "slot_id": "B4",
        "energy_wh": 12_500,
        "started_at": datetime(2026, 3, 10, 10, 0, tzinfo=UTC),
        "stopped_at": datetime(2026, 3, 10, 11, 30, tzinfo=UTC),
        "rate": RATE,
        **SUBJECT,
    }
    values.update(overrides)
    return ChargingCompleted(**values)


# -- the shipped locales -------------------------------------------------------------


@pytest.mark.parametrize("locale", sorted(TEXTS))
def test_every_shipped_locale_has_all_five_templates_and_every_failure_in_words(
    locale: str,
) -> None:
    assert set(TEXTS[locale]) == set(NOTIFIED_EVENT_TYPES)
    assert len(NOTIFIED_EVENT_TYPES) == 5
    for event_type in NOTIFIED_EVENT_TYPES:
        for channel in CHANNELS:
            template = DEFAULT_TEMPLATES[(event_type, channel, locale)]
            check_template(template.subject)
            check_template(template.body)
    words = WORDS[locale]
    assert set(words.failures) == set(FAILURE_CODES)
    assert all(words.failures.values())
    assert set(words.released) == set(WORDS["en"].released)


def test_the_shipped_locales_have_words_and_an_email_frame_alike() -> None:
    assert set(WORDS) == set(TEXTS)
    assert "cost" in TEMPLATE_VARIABLES


# -- who is told ---------------------------------------------------------------------


def test_an_event_naming_its_driver_reaches_that_driver_even_without_the_vehicle() -> None:
    event = v2(ChargingStarted(session_id="s-1", charger_id="CP-1", started_at=NOW, **SUBJECT))
    alice = user(vehicle_ids=frozenset())
    # bob once listed the car and the card: the charge is alice's, not his
    bob = user("bob", vehicle_ids=frozenset({"EV-1"}), id_tags=frozenset({"A1B2C3"}))
    assert [n.user_id for n in plan(event, [alice, bob], {}, NOW)] == ["alice"]


def test_an_event_naming_no_driver_reaches_the_users_listing_its_vehicle_or_tag() -> None:
    anonymous = {**SUBJECT, "driver_id": None}
    event = v2(ParkingReleased(reservation_id="r-1", slot_id="B4", **anonymous))
    owner = user("bob", vehicle_ids=frozenset({"EV-1"}))
    card = user("carol", id_tags=frozenset({"A1B2C3"}))
    stranger = user("dave", vehicle_ids=frozenset({"EV-9"}))
    told = plan(event, [owner, card, stranger], {}, NOW)
    assert [n.user_id for n in told] == ["bob", "carol"]


def test_a_version_1_event_is_read_with_its_subject_unknown_but_its_vehicle_kept() -> None:
    old = CloudEvent(
        id="ev-1",
        source="/sites/site-a",
        type="parking.released",
        time=NOW,
        sequence=1,
        data={"reservation_id": "r-1", "slot_id": "B4", "vehicle_id": "EV-1"},
    )
    told = plan(old, [user("bob", vehicle_ids=frozenset({"EV-1"}))], {}, NOW)
    assert [n.user_id for n in told] == ["bob"]


# -- the messages --------------------------------------------------------------------


def test_completion_states_energy_and_cost_from_the_events_rate() -> None:
    message = sms(v2(completed()), user())
    assert message.subject == "Charging completed: 12.50 kWh"
    assert message.body == (
        "Charging of EV-1 finished at 2026-03-10 12:30 CET on charger CP-1 at slot B4"
        " (site-a): 12.50 kWh in 1 h 30 min. Cost: 5.00 EUR."
    )
    german = sms(v2(completed()), user(locale="de"))
    assert "Kosten: 5.00 EUR." in german.body
    assert "Stellplatz B4" in german.body


def test_completion_prices_with_the_one_engine_and_says_when_the_cost_is_unknown() -> None:
    windows = {
        **RATE,
        "tou_windows": [{"start": "11:00", "end": "12:00", "energy_price_per_kwh": "1.00"}],
    }
    cost = session_cost(completed(rate=windows), received=NOW)
    assert cost is not None
    # 12.5 kWh spread over 10:00-11:30 UTC; 11:00-12:00 in Berlin is 10:00-11:00 UTC:
    # two thirds at 1.00 (8.33), one third at 0.40 (1.67)
    assert (cost.currency, cost.total) == ("EUR", Decimal("10.00"))
    for rate in (None, {"currency": "EUR"}, {**RATE, "timezone": "Mars/Olympus"}):
        no_rate = sms(v2(completed(rate=rate)), user())
        assert no_rate.body.endswith("Cost: not known yet.")
        assert session_cost(completed(rate=rate), received=NOW) is None
    german = sms(v2(completed(rate=None)), user(locale="de"))
    assert german.body.endswith("Kosten: noch nicht bekannt.")


def test_reservation_messages_name_the_slot_and_its_times_in_the_users_zone() -> None:
    reserved = ParkingReserved(
        slot_id="B4",
        reservation_id="r-1",
        starts_at=datetime(2026, 7, 1, 8, 0, tzinfo=UTC),
        ends_at=datetime(2026, 7, 1, 8, 15, tzinfo=UTC),
        **SUBJECT,
    )
    message = sms(v2(reserved), user())
    assert message.subject == "Parking reserved: slot B4"
    assert message.body == (
        "Slot B4 at site-a is reserved for EV-1 from 2026-07-01 10:00 CEST"
        " until 2026-07-01 10:15 CEST."
    )
    tokyo = sms(v2(reserved), user(timezone="Asia/Tokyo"))
    assert "until 2026-07-01 17:15 JST" in tokyo.body
    released = ParkingReleased(reservation_id="r-1", slot_id="B4", reason="expired", **SUBJECT)
    message = sms(v2(released), user())
    assert message.body == (
        "Your reservation for EV-1 at slot B4 (site-a) ended at 2026-03-10 13:00 CET:"
        " the reservation expired unused."
    )
    german = sms(v2(released), user(locale="de"))
    assert german.body.endswith("die Reservierung ist ungenutzt abgelaufen.")


def test_started_names_charger_and_slot_and_never_prints_a_dash_for_the_unknown() -> None:
    data = ChargingStarted(
        session_id="s-1", charger_id="CP-1", slot_id="B4", started_at=NOW, **SUBJECT
    )
    assert sms(v2(data), user()).body == (
        "Charging of EV-1 started at 2026-03-10 13:00 CET on charger CP-1 at slot B4 (site-a)."
    )
    unknown = ChargingStarted(
        session_id="s-1", charger_id="CP-1", started_at=NOW, **{**SUBJECT, "vehicle_id": None}
    )
    body = sms(v2(unknown), user()).body
    assert (
        body == "Charging of your vehicle started at 2026-03-10 13:00 CET on charger CP-1 (site-a)."
    )


@pytest.mark.parametrize("locale", sorted(WORDS))
@pytest.mark.parametrize("code", FAILURE_CODES)
def test_failed_says_what_went_wrong_in_words_for_every_code(locale: str, code: str) -> None:
    failed = ChargingFailed(charger_id="CP-1", code=code, **SUBJECT)
    message = plan(v2(failed), [user(locale=locale)], {}, NOW)[0]
    assert message.urgent
    assert message.body.endswith(f"{WORDS[locale].failures[code]}.")
    assert " -" not in message.body


def test_an_other_failure_shows_the_sites_own_words() -> None:
    failed = ChargingFailed(charger_id="CP-1", reason="breaker tripped", **SUBJECT)
    assert sms(v2(failed), user()).body == (
        "Charging of EV-1 on charger CP-1 (site-a) failed at 2026-03-10 13:00 CET: breaker tripped."
    )
