"""The lockout rules of failed OCPP upgrades, on a fake clock; and the identity rules."""

from __future__ import annotations

import pytest

from edge.core.ids import InvalidChargerId, charger_key, parse_charger_id
from edge.ocpp.throttle import Lockout, LockoutPolicy, Scope, UpgradeThrottle, address_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


POLICY = LockoutPolicy(failures=3, window=10.0, base=5.0, cap=40.0, max_tracked=100)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def throttle(clock: FakeClock) -> UpgradeThrottle:
    return UpgradeThrottle(POLICY, clock)


def fail(
    throttle: UpgradeThrottle, times: int, address: str = "10.0.0.9", charger: str = "cp-1"
) -> list[Lockout]:
    started: list[Lockout] = []
    for _ in range(times):
        started += throttle.failed(address, charger)
    return started


def test_failures_within_the_window_lock_both_the_address_and_the_id(
    throttle: UpgradeThrottle, clock: FakeClock
) -> None:
    assert fail(throttle, 2) == []
    assert throttle.locked("10.0.0.9", "cp-1") is None
    started = fail(throttle, 1)
    assert {(lockout.scope, lockout.retry_after) for lockout in started} == {
        (Scope.ADDRESS, 5.0),
        (Scope.CHARGER, 5.0),
    }
    locked = throttle.locked("10.0.0.9", "cp-1")
    assert locked is not None
    assert locked.retry_after_header == "5"
    # the id is locked from anywhere, the address for any id
    assert throttle.locked("10.0.0.10", "cp-1") is not None
    assert throttle.locked("10.0.0.9", "cp-2") is not None
    assert throttle.locked("10.0.0.10", "cp-2") is None
    clock.advance(5.0)
    assert throttle.locked("10.0.0.9", "cp-1") is None


def test_failures_spread_wider_than_the_window_never_lock(
    throttle: UpgradeThrottle, clock: FakeClock
) -> None:
    for _ in range(10):
        assert fail(throttle, 2) == []
        clock.advance(10.5)
    assert throttle.locked("10.0.0.9", "cp-1") is None


def test_each_lockout_doubles_up_to_the_cap(throttle: UpgradeThrottle, clock: FakeClock) -> None:
    durations = []
    for _ in range(6):
        started = fail(throttle, 3, charger="cp-1")
        durations.append(max(lockout.retry_after for lockout in started))
        clock.advance(durations[-1])
    assert durations == [5.0, 10.0, 20.0, 40.0, 40.0, 40.0]
    # quiet for longer than the cap: forgotten, the next lockout is the first again
    clock.advance(POLICY.cap + 1)
    assert max(lockout.retry_after for lockout in fail(throttle, 3)) == 5.0


def test_success_clears_the_id_and_trusts_its_address(
    throttle: UpgradeThrottle, clock: FakeClock
) -> None:
    fail(throttle, 2, address="10.0.0.1")
    throttle.succeeded("10.0.0.1", "cp-1")  # the real charger
    assert fail(throttle, 2, address="10.0.0.66") == []  # the count started again
    assert fail(throttle, 1, address="10.0.0.66")  # the attacker locks the id...
    assert throttle.locked("10.0.0.66", "cp-1") is not None
    assert throttle.locked("10.0.0.77", "cp-1") is not None
    # ...but not for the address the charger authenticated from
    assert throttle.locked("10.0.0.1", "cp-1") is None


def test_an_address_that_succeeds_keeps_its_own_count(throttle: UpgradeThrottle) -> None:
    # a valid charger's successes do not hide guesses for other ids from its address
    for other in ("cp-2", "cp-3", "cp-4"):
        throttle.succeeded("10.0.0.9", "cp-1")
        throttle.failed("10.0.0.9", other)
    assert throttle.locked("10.0.0.9", "cp-1") is not None


def test_memory_is_bounded_by_max_tracked(clock: FakeClock) -> None:
    throttle = UpgradeThrottle(
        LockoutPolicy(failures=3, window=10.0, base=5.0, cap=40.0, max_tracked=50), clock
    )
    for n in range(10_000):
        throttle.failed(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", f"cp-{n}")
        throttle.succeeded(f"10.0.{n >> 8 & 255}.{n & 255}", f"cp-{n}")
    assert throttle.tracked(Scope.ADDRESS) == 50
    assert throttle.tracked(Scope.CHARGER) <= 50
    assert len(throttle._trusted) <= 50


def test_expired_records_are_dropped_as_new_ones_come(
    throttle: UpgradeThrottle, clock: FakeClock
) -> None:
    for n in range(20):
        throttle.failed(f"10.0.0.{n}", None)
    clock.advance(POLICY.cap + 1)
    throttle.failed("10.0.1.1", None)
    assert throttle.tracked(Scope.ADDRESS) == 1


def test_ipv6_addresses_count_by_their_64_network() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("192.0.2.7") == "192.0.2.7"


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="base"):
        LockoutPolicy(base=100, cap=10)
    with pytest.raises(ValueError, match="failures"):
        LockoutPolicy(failures=0)


@pytest.mark.parametrize(
    "text",
    ["CP-1", "cp_1", "A", "x" * 48, "a*b=c+d|e@f.g"],
)
def test_identity_accepted(text: str) -> None:
    assert parse_charger_id(text) == text


@pytest.mark.parametrize(
    "text",
    # lookalikes written as escapes: Cyrillic C and P, a fullwidth digit, fullwidth letters
    [
        "",
        "x" * 49,
        "CP-1\n",
        "CP 1",
        "CP:1",
        "CP/1",
        "\u0421\u0420-1",
        "CP-\uff11",
        "CP-1\x00",
        "\uff23\uff30-1",
    ],
)
def test_identity_refused(text: str) -> None:
    with pytest.raises(InvalidChargerId):
        parse_charger_id(text)


def test_identity_case_is_not_significant() -> None:
    assert charger_key("CP-Left") == charger_key("cp-left")
