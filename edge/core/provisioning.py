"""Provisioning a charger: the site's configuration keys (1.6) or variables (2.0.1)
applied once per change, and whether its boot is accepted yet.

Plain decisions, no I/O: what a charger's settings are (the site's defaults with the
charger's own on top), what to change given what the charger holds, what its answers
mean, and what its next BootNotification gets. The OCPP adapter
(:mod:`edge.ocpp.provisioning`) does the reading and writing they call for.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Literal

from edge.core.model import BootStatus

BootMode = Literal["accept", "pending"]
ValidationMode = Literal["tolerant", "strict"]

# A 2.0.1 variable as the configuration names it: Component[evse].Variable[instance],
# e.g. "OCPPCommCtrlr.HeartbeatInterval", "EVSE[1].AvailabilityState",
# "SampledDataCtrlr.TxUpdatedMeasurands", "Connector[2].Enabled[Main]".
_NAME: Final = r"[A-Za-z0-9_*-]{1,50}"
VARIABLE_KEY: Final = re.compile(
    rf"^(?P<component>{_NAME})(\[(?P<evse>\d{{1,5}})\])?\.(?P<variable>{_NAME})"
    rf"(\[(?P<instance>[A-Za-z0-9_.*-]{{1,50}})\])?$"
)
# 1.6 configuration keys are CiString50 and values CiString500.
CONFIG_KEY: Final = re.compile(r"^[\x21-\x7e]{1,50}$")
MAX_VALUE: Final = 500


@dataclass(frozen=True, slots=True)
class VariableKey:
    component: str
    variable: str
    evse_id: int | None = None
    instance: str | None = None

    def __str__(self) -> str:
        evse = f"[{self.evse_id}]" if self.evse_id is not None else ""
        instance = f"[{self.instance}]" if self.instance is not None else ""
        return f"{self.component}{evse}.{self.variable}{instance}"


def parse_variable_key(text: str) -> VariableKey:
    """``Component[evse].Variable[instance]``; ValueError naming the key if it is not one."""
    found = VARIABLE_KEY.match(text)
    if found is None:
        raise ValueError(
            f"variable {text!r} is not Component.Variable (with an optional [evse] after "
            "the component and [instance] after the variable, e.g. EVSE[1].Enabled)"
        )
    evse = found["evse"]
    return VariableKey(found["component"], found["variable"], int(evse) if evse else None,
                       found["instance"])  # fmt: skip


def check_config_key(key: str, value: str) -> None:
    if not CONFIG_KEY.match(key):
        raise ValueError(f"configuration key {key!r} must be 1-50 printable characters")
    if len(value) > MAX_VALUE:
        raise ValueError(f"configuration key {key!r}: its value is over {MAX_VALUE} characters")


@dataclass(frozen=True, slots=True)
class ChargerSetup:
    """One charger's provisioning settings, the site's defaults applied."""

    boot: BootMode = "accept"
    validation: ValidationMode = "tolerant"
    config: Mapping[str, str] = field(default_factory=dict)  # 1.6 key -> value
    variables: Mapping[str, str] = field(default_factory=dict)  # 2.0.1 key -> value

    def wanted(self, version: str) -> Mapping[str, str]:
        """What this charger's protocol version is to hold (``ocpp1.6`` or ``ocpp2.0.1``)."""
        return self.config if version == "ocpp1.6" else self.variables

    def fingerprint(self, version: str) -> str:
        """Names what is to be applied: provisioning runs again only when it changes."""
        text = json.dumps(sorted(self.wanted(version).items()), separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class State(StrEnum):
    NONE = "none"  # never provisioned
    RUNNING = "running"
    DONE = "done"  # every key holds its configured value
    PARTIAL = "partial"  # done, but some keys were refused (see failed)
    FAILED = "failed"  # the charger could not be read or written (see reason)


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State
    fingerprint: str
    applied: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # (key, the charger's status)
    pending_reboot: tuple[str, ...] = ()
    reason: str | None = None


def boot_status(setup: ChargerSetup, version: str, last: Outcome | None) -> BootStatus:
    """Accepted unless the charger is to be provisioned on a Pending boot and has not
    been for its current settings. A charger whose provisioning failed is accepted
    (with the failure kept and logged): a site would rather charge with a charger's own
    settings than not at all."""
    if setup.boot == "accept" or provisioned(setup, version, last, failed_too=True):
        return BootStatus.ACCEPTED
    return BootStatus.PENDING


def provisioned(
    setup: ChargerSetup, version: str, last: Outcome | None, *, failed_too: bool = False
) -> bool:
    """Provisioned for its current settings (``failed_too``: or tried, and failed)."""
    finished = {State.DONE, State.PARTIAL} | ({State.FAILED} if failed_too else set())
    return (
        last is not None
        and last.state in finished
        and last.fingerprint == setup.fingerprint(version)
    )


def needs_run(setup: ChargerSetup, version: str, last: Outcome | None) -> bool:
    """After a boot: a Pending boot is always provisioned; an accepted one only if it has
    keys to apply that it has not had applied (a failed try is tried again, without
    holding the charger Pending a second time)."""
    if provisioned(setup, version, last):
        return False
    return setup.boot == "pending" or bool(setup.wanted(version))


def changes(wanted: Mapping[str, str], held: Mapping[str, str | None]) -> dict[str, str]:
    """The keys whose configured value the charger does not hold (or did not report)."""
    return {key: value for key, value in wanted.items() if held.get(key) != value}


ACCEPTED: Final = "Accepted"
REBOOT_REQUIRED: Final = "RebootRequired"


def outcome(fingerprint: str, results: Mapping[str, str]) -> Outcome:
    """What the charger answered for each key changed (key -> its status)."""
    applied = tuple(k for k, s in results.items() if s in (ACCEPTED, REBOOT_REQUIRED))
    failed = tuple((k, s) for k, s in results.items() if s not in (ACCEPTED, REBOOT_REQUIRED))
    reboot = tuple(k for k, s in results.items() if s == REBOOT_REQUIRED)
    state = State.PARTIAL if failed else State.DONE
    return Outcome(state, fingerprint, applied, failed, reboot)


def failure(fingerprint: str, reason: str) -> Outcome:
    return Outcome(State.FAILED, fingerprint, reason=reason)
