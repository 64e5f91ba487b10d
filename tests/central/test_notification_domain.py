"""The notification service's core: templates, quiet hours, backoff, planning, breaker."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from central.notification.errors import (
    CircuitOpenError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from central.notification.model import UserId
from central.notification.planning import plan
from central.notification.preferences import ChannelSetting, Preferences, QuietHours
from central.notification.retry import DeadLetter, Retry, RetryPolicy, after_failure, retry_delay
from central.notification.senders import GuardedSender, OutgoingMessage
from central.notification.templates import (
    MessageTemplate,
    TemplateError,
    check_template,
    locale_candidates,
    resolve_template,
)
from contract.envelope import CloudEvent

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def event(type_: str, data: dict[str, object], event_id: str = "ev-1") -> CloudEvent:
    return CloudEvent(
        id=event_id, source="/sites/site-a", type=type_, time=NOW, sequence=1, data=data
    )


def prefs(**overrides: object) -> Preferences:
    values: dict[str, object] = {
        "user_id": UserId("alice"),
        "vehicle_ids": frozenset({"EV-1"}),
        "channels": {
            "email": ChannelSetting(True, "alice@example.com"),
            "sms": ChannelSetting(True, "+4915112345678"),
            "push": ChannelSetting(False, "tok"),
        },
    }
    values.update(overrides)
    return Preferences(**values)  # type: ignore[arg-type]


# -- quiet hours -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "now", "expected"),
    [
        # across midnight, Berlin (UTC+1 in winter): 23:30 local -> ends 07:00 next day
        ("22:00", "07:00", "2026-01-15T22:30:00+00:00", "2026-01-16T06:00:00+00:00"),
        # after midnight, 03:00 local -> ends 07:00 the same day
        ("22:00", "07:00", "2026-01-15T02:00:00+00:00", "2026-01-15T06:00:00+00:00"),
        # daytime: 12:00 local is outside 22-07
        ("22:00", "07:00", "2026-01-15T11:00:00+00:00", None),
        # end is exclusive
        ("22:00", "07:00", "2026-01-15T06:00:00+00:00", None),
        # a same-day window 12:00-14:00, 13:00 local
        ("12:00", "14:00", "2026-01-15T12:00:00+00:00", "2026-01-15T13:00:00+00:00"),
        # summer time: 23:00 CEST (UTC+2) -> 07:00 CEST is 05:00 UTC
        ("22:00", "07:00", "2026-07-01T21:00:00+00:00", "2026-07-02T05:00:00+00:00"),
        # the night the clocks go forward (29 March 2026): 07:00 CEST = 05:00 UTC
        ("22:00", "07:00", "2026-03-28T22:00:00+00:00", "2026-03-29T05:00:00+00:00"),
    ],
)
def test_quiet_hours_end(start: str, end: str, now: str, expected: str | None) -> None:
    quiet = QuietHours(time.fromisoformat(start), time.fromisoformat(end), "Europe/Berlin")
    found = quiet.ends_after(datetime.fromisoformat(now))
    assert found == (datetime.fromisoformat(expected) if expected else None)


def test_quiet_hours_refuse_empty_window_and_unknown_zone() -> None:
    with pytest.raises(ValueError, match="start != end"):
        QuietHours(time(1), time(1), "UTC")
    with pytest.raises(Exception, match="Nowhere"):
        QuietHours(time(1), time(2), "Nowhere/Land")


@given(start=st.times(), end=st.times(), offset=st.integers(min_value=0, max_value=7 * 24 * 3600))
def test_quiet_hours_end_is_later_and_outside(start: time, end: time, offset: int) -> None:
    if start.replace(microsecond=0) == end.replace(microsecond=0):
        return
    quiet = QuietHours(start.replace(microsecond=0), end.replace(microsecond=0), "Europe/Berlin")
    now = NOW + timedelta(seconds=offset)
    found = quiet.ends_after(now)
    if found is not None:
        assert found > now
        assert found - now <= timedelta(hours=25)
        assert quiet.ends_after(found) is None


# -- templates -------------------------------------------------------------------


def test_locale_candidates() -> None:
    assert locale_candidates("de-AT", "en") == ["de-AT", "de", "en"]
    assert locale_candidates("en", "en") == ["en"]


def test_resolve_prefers_override_then_language_default_then_fallback() -> None:
    custom = MessageTemplate("Custom", "custom $vehicle_id")
    overrides = {("parking.reserved", "email", "de-AT"): custom}
    assert resolve_template(overrides, "parking.reserved", "email", "de-AT") == custom
    german = resolve_template({}, "parking.reserved", "sms", "de-AT")
    assert german is not None
    assert "reserviert" in german.body
    fallback = resolve_template({}, "parking.reserved", "sms", "fr")
    assert fallback is not None
    assert "reserved" in fallback.body
    assert resolve_template({}, "parking.occupied", "sms", "en") is None


def test_check_template_rejects_unknown_and_bad_placeholders() -> None:
    check_template("Hi $vehicle_id, ${energy_kwh} kWh, costs $$5")
    with pytest.raises(TemplateError, match="secret"):
        check_template("$secret")
    with pytest.raises(TemplateError, match="syntax"):
        check_template("price $")


# -- backoff and dead letters ----------------------------------------------------


def test_backoff_doubles_caps_and_jitters() -> None:
    policy = RetryPolicy(
        base_delay=timedelta(seconds=10), max_delay=timedelta(seconds=60), jitter=0.5
    )
    # jitter takes a random share, up to half here, off each delay (common.backoff)
    assert retry_delay(policy, 1, 0.0) == timedelta(seconds=10)
    assert retry_delay(policy, 2, 0.0) == timedelta(seconds=20)
    assert retry_delay(policy, 3, 0.5) == timedelta(seconds=30)  # 40 less a quarter
    assert retry_delay(policy, 10, 0.0) == timedelta(seconds=60)
    assert retry_delay(policy, 100, 0.0) == timedelta(seconds=60)


@given(failures=st.integers(1, 50), rand=st.floats(0, 1, exclude_max=True))
def test_backoff_stays_within_jitter_bounds(failures: int, rand: float) -> None:
    policy = RetryPolicy()
    delay = retry_delay(policy, failures, rand)
    assert policy.base_delay * 0.8 <= delay <= policy.max_delay * 1.2


def test_after_failure_retries_then_dead_letters() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=5), jitter=0)
    first = after_failure(policy, attempts=1, error="timeout", permanent=False, now=NOW, rand=0)
    assert first == Retry(at=NOW + timedelta(seconds=5), attempts=1, error="timeout")
    second = after_failure(policy, attempts=2, error="timeout", permanent=False, now=NOW, rand=0)
    assert isinstance(second, Retry)
    assert second.at == NOW + timedelta(seconds=10)
    assert after_failure(
        policy, attempts=3, error="timeout", permanent=False, now=NOW, rand=0
    ) == DeadLetter(3, "timeout")
    assert after_failure(
        policy, attempts=1, error="550 no such user", permanent=True, now=NOW, rand=0
    ) == DeadLetter(1, "550 no such user")


# -- planning --------------------------------------------------------------------


def test_plan_renders_per_channel_in_user_zone_and_locale() -> None:
    ev = event(
        "charging.completed",
        {
            "session_id": "s-1",
            "vehicle_id": "EV-1",
            "energy_wh": 12345,
            "started_at": "2026-03-10T10:00:00Z",
            "stopped_at": "2026-03-10T11:30:00Z",
            "reason": "Local",
            "charger_id": "CP-1",
        },
    )
    out = plan(ev, [prefs(locale="de", timezone="Europe/Berlin")], {}, NOW)
    assert [(n.channel, n.address) for n in out] == [
        ("email", "alice@example.com"),
        ("sms", "+4915112345678"),
    ]
    email = out[0]
    assert email.subject == "Ladevorgang beendet: 12.35 kWh"
    assert "12:30" in email.body  # 11:30 UTC in Berlin
    assert "1 h 30 min" in email.body
    assert email.dedup_key == "ev-1|alice|email"
    assert email.deliver_at == NOW


def test_subjects_are_one_short_line_whatever_the_data() -> None:
    slot = "A1\r\nBcc: x@y.z" + "9" * 50  # 64 characters, the longest id the contract takes
    data = {"vehicle_id": "EV-1", "reservation_id": "r-1", "slot_id": slot}
    ev = event("parking.reserved", data)
    [email, _sms] = plan(ev, [prefs()], {}, NOW)
    assert "\n" not in email.subject
    assert email.subject.startswith("Parking reserved: slot A1 Bcc: x@y.z999")
    # an operator's template can make a subject long: it is cut
    long = {("parking.reserved", "email", "en"): MessageTemplate("$slot_id " * 5, "b")}
    [email, _sms] = plan(ev, [prefs()], long, NOW)
    assert "\n" not in email.subject
    assert len(email.subject) == 200
    # data that breaks its contract (an id of 300 characters) is refused, not rendered
    with pytest.raises(ValidationError):
        plan(event("parking.reserved", {**data, "slot_id": "9" * 300}), [prefs()], {}, NOW)


def test_plan_only_concerned_and_subscribed_users() -> None:
    ev = event("parking.reserved", {"vehicle_id": "EV-2", "slot_id": "S1", "reservation_id": "r-1"})
    bob = prefs(user_id=UserId("bob"), vehicle_ids=frozenset({"EV-2"}))
    carol = prefs(
        user_id=UserId("carol"),
        vehicle_ids=frozenset({"EV-2"}),
        events=frozenset({"charging.completed"}),
    )
    out = plan(ev, [prefs(), bob, carol], {}, NOW)
    assert {n.user_id for n in out} == {"bob"}
    by_tag = event(
        "charging.failed", {"charger_id": "CP-1", "id_tag": "TAG9", "reason": "EVDisconnected"}
    )
    dave = prefs(user_id=UserId("dave"), vehicle_ids=frozenset(), id_tags=frozenset({"TAG9"}))
    assert {n.user_id for n in plan(by_tag, [prefs(), dave], {}, NOW)} == {"dave"}
    assert plan(event("parking.occupied", {"vehicle_id": "EV-1"}), [prefs()], {}, NOW) == []


def test_plan_delays_non_urgent_during_quiet_hours_but_not_urgent() -> None:
    quiet = QuietHours(time(11), time(15), "UTC")
    sleepy = prefs(quiet_hours=quiet)
    started = {
        "session_id": "s-1",
        "charger_id": "CP-1",
        "started_at": NOW.isoformat(),
        "vehicle_id": "EV-1",
    }
    normal = plan(event("charging.started", started), [sleepy], {}, NOW)
    assert {n.deliver_at for n in normal} == {datetime(2026, 3, 10, 15, tzinfo=UTC)}
    failed = plan(
        event("charging.failed", {"charger_id": "CP-1", "vehicle_id": "EV-1"}), [sleepy], {}, NOW
    )
    assert {n.deliver_at for n in failed} == {NOW}
    assert all(n.urgent for n in failed)


# -- circuit breaker around a channel ----------------------------------------------


class Provider:
    """A channel that fails while ``down`` (transiently) or for a bad address (for good)."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0

    async def send(self, message: OutgoingMessage) -> None:
        self.calls += 1
        if message.address == "bad":
            raise PermanentDeliveryError("no such number")
        if self.down:
            raise TransientDeliveryError("503")


def message(address: str = "+4915100000000") -> OutgoingMessage:
    return OutgoingMessage("n1", "sms", address, "s", "b", "charging.started", "e1", "u1")


async def test_breaker_opens_after_transient_failures_and_lets_one_trial_through() -> None:
    provider, now = Provider(), [100.0]
    guarded = GuardedSender(
        "sms", provider, failure_threshold=2, reset_after=30.0, monotonic=lambda: now[0]
    )
    for _ in range(2):
        with pytest.raises(TransientDeliveryError, match="503"):
            await guarded.send(message())
    assert guarded.breaker.mode == "open"
    with pytest.raises(CircuitOpenError) as refused:
        await guarded.send(message())
    assert refused.value.retry_after == 30.0
    assert provider.calls == 2
    now[0] += 30
    with pytest.raises(TransientDeliveryError, match="503"):  # the trial fails: open again
        await guarded.send(message())
    assert guarded.breaker.mode == "open"
    now[0] += 30
    provider.down = False
    await guarded.send(message())
    assert guarded.breaker.mode == "closed"
    # a refused address is the message's fault, not the provider's
    for _ in range(3):
        with pytest.raises(PermanentDeliveryError):
            await guarded.send(message("bad"))
    assert guarded.breaker.mode == "closed"
