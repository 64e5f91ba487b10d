"""The provisioning decisions (edge/core/provisioning.py): when a boot is held Pending,
when provisioning runs, what is sent, and what the charger's answers come to."""

from __future__ import annotations

import pytest

from edge.core.model import BootStatus
from edge.core.provisioning import (
    ChargerSetup,
    Outcome,
    State,
    boot_status,
    changes,
    failure,
    needs_run,
    outcome,
)

V16, V201 = "ocpp1.6", "ocpp2.0.1"
PENDING = ChargerSetup(boot="pending", config={"A": "1"}, variables={"C.V": "2"})
KEYS_ONLY = ChargerSetup(boot="accept", config={"A": "1"})
PLAIN = ChargerSetup()


def done(setup: ChargerSetup, version: str = V16) -> Outcome:
    return Outcome(State.DONE, setup.fingerprint(version))


@pytest.mark.parametrize(
    ("setup", "last", "status", "runs"),
    [
        (PLAIN, None, BootStatus.ACCEPTED, False),  # nothing to do: nothing read or sent
        (KEYS_ONLY, None, BootStatus.ACCEPTED, True),  # accepted, keys applied after
        (KEYS_ONLY, done(KEYS_ONLY), BootStatus.ACCEPTED, False),
        (PENDING, None, BootStatus.PENDING, True),
        (PENDING, done(PENDING), BootStatus.ACCEPTED, False),  # a reconnect: at once
        (PENDING, done(ChargerSetup(config={"A": "0"})), BootStatus.PENDING, True),  # changed
        (PENDING, Outcome(State.PARTIAL, PENDING.fingerprint(V16)), BootStatus.ACCEPTED, False),
        # a failed read is accepted, and tried again after the boot
        (PENDING, failure(PENDING.fingerprint(V16), "timeout"), BootStatus.ACCEPTED, True),
        (PENDING, Outcome(State.RUNNING, PENDING.fingerprint(V16)), BootStatus.PENDING, True),
    ],
)
def test_boot_and_run(
    setup: ChargerSetup, last: Outcome | None, status: BootStatus, runs: bool
) -> None:
    assert boot_status(setup, V16, last) is status
    assert needs_run(setup, V16, last) is runs


def test_the_fingerprint_is_the_versions_own_keys() -> None:
    changed_variables = ChargerSetup(boot="pending", config={"A": "1"}, variables={"C.V": "3"})
    assert changed_variables.fingerprint(V16) == PENDING.fingerprint(V16)
    assert changed_variables.fingerprint(V201) != PENDING.fingerprint(V201)
    assert boot_status(changed_variables, V201, done(PENDING, V201)) is BootStatus.PENDING


def test_only_what_differs_is_sent() -> None:
    wanted = {"A": "1", "B": "2", "C": "3"}
    assert changes(wanted, {"A": "1", "B": "9", "D": "4"}) == {"B": "2", "C": "3"}
    assert changes(wanted, {"A": "1", "B": "2", "C": "3"}) == {}


def test_the_answers_come_to_an_outcome() -> None:
    result = outcome(
        "f", {"A": "Accepted", "B": "RebootRequired", "C": "Rejected", "D": "NotSupported"}
    )
    assert result == Outcome(
        State.PARTIAL, "f", ("A", "B"), (("C", "Rejected"), ("D", "NotSupported")), ("B",)
    )
    assert outcome("f", {"A": "Accepted"}).state is State.DONE
    assert outcome("f", {}).state is State.DONE  # it held every value already
