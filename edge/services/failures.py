"""Why a charge failed: the site's ``charging.failed`` events and the rules that make them.

Central treats ``charging.failed`` as urgent and tells the driver, so each event carries a
``code`` from :data:`contract.events.FAILURE_CODES` for programs and a ``reason`` in words
a driver can read. The charging sessions (:mod:`edge.services.sessions`) and the remote
start (:mod:`edge.uplink.commands`) decide *when* a charge failed; this module says *what*
each case is called and builds the event, so both name a failure the same way. No I/O.
"""

from __future__ import annotations

from typing import Final

from contract.events import FAILURE_CODES, ChargingFailed
from edge.core.model import ConnectorStatus, Session, Subject

# What a driver reads for each code (central's templates may word it again per locale).
WORDS: Final[dict[str, str]] = {
    "RemoteStartRejected": "The charger refused to start charging.",
    "RemoteStartTimeout": "Charging did not begin in time.",
    "ChargerOffline": "The charger is not connected at the moment.",
    "TokenRefused": "Your card or app token was not accepted at this charger.",
    "ConnectorFault": "The charger reported a fault.",
    "EVError": "Your vehicle reported an error or stopped communicating with the charger.",
    "EndedBeforeCharging": "The charge ended before any energy was delivered.",
    "Other": "Charging failed.",
}
assert set(WORDS) == set(FAILURE_CODES)

# Stop reasons (1.6 StopTransaction, 2.0.1 stoppedReason) that end a charge before it
# began when no energy flowed: a failure, not a completed session.
ENDED_EARLY_REASONS: Final = frozenset({"EVDisconnected", "PowerLoss", "EmergencyStop"})
# 2.0.1 stoppedReason values that are the charger's hardware failing during a session.
FAULT_STOP_REASONS: Final = frozenset({"GroundFault", "OvercurrentFault", "PowerQuality"})
# 1.6 ChargePointErrorCode values that are the EV side, not the charger.
EV_ERROR_CODES: Final = frozenset({"EVCommunicationError"})


def charging_failed(
    charger_id: str,
    evse_id: int | None,
    code: str,
    subject: Subject,
    *,
    detail: str = "",
    session_id: str | None = None,
    command_id: str | None = None,
) -> ChargingFailed:
    """The event for ``code``, its reason in words (``detail``, if any, said after them)."""
    words = WORDS.get(code, WORDS["Other"])
    reason = f"{words} ({detail})" if detail else words
    return ChargingFailed(
        charger_id=charger_id, evse_id=evse_id, code=code, reason=reason[:256],
        session_id=session_id, command_id=command_id, **subject.fields(),
    )  # fmt: skip


def session_failed(session: Session, code: str, detail: str = "") -> ChargingFailed | None:
    """The event for a failure during ``session``; None when central heard of no session
    (a refused token) or was already told of this failure for it."""
    if session.refused or code in session.failures_reported:
        return None
    session.failures_reported.add(code)
    return charging_failed(
        session.charger_id, session.evse_id, code, session.subject,
        detail=detail, session_id=session.id,
    )  # fmt: skip


def status_failure(status: ConnectorStatus, error_code: str | None) -> str | None:
    """The failure a connector status during a session stands for, or None."""
    if error_code in EV_ERROR_CODES:
        return "EVError"
    if status is ConnectorStatus.FAULTED:
        return "ConnectorFault"
    return None


def stop_failure(session: Session, reason: str) -> str | None:
    """The failure a session's stop reason stands for, or None for an ordinary end."""
    if reason in ENDED_EARLY_REASONS and session.energy_wh <= 0:
        return "EndedBeforeCharging"
    if reason in FAULT_STOP_REASONS:
        return "ConnectorFault"
    return None
