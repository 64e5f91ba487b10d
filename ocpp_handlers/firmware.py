"""UpdateFirmware in each version's words.

1.6 core has a plain ``UpdateFirmware`` (no request id, no signature); the 1.6 Security
Whitepaper's ``SignedUpdateFirmware`` and 2.0.1's ``UpdateFirmware`` carry the same
``firmware`` object and a ``requestId`` that the charger's status notifications repeat.
"""

from __future__ import annotations

from edge.core.commands import UnsupportedCommand, UpdateFirmware
from ocpp_handlers.base import Payload


def _retries(command: UpdateFirmware, payload: Payload) -> Payload:
    if command.retries is not None:
        payload["retries"] = command.retries
    if command.retry_interval is not None:
        payload["retryInterval"] = command.retry_interval
    return payload


def plain_16(command: UpdateFirmware) -> Payload:
    """1.6 core UpdateFirmware (its answer is empty: taken as Accepted)."""
    payload: Payload = {
        "location": command.location,
        "retrieveDate": command.retrieve_at.isoformat(),
    }
    return _retries(command, payload)


def with_request_id(command: UpdateFirmware, *, signature_required: bool) -> Payload:
    """1.6 SignedUpdateFirmware (``signature_required``) and 2.0.1 UpdateFirmware."""
    if signature_required and (command.signature is None or command.signing_certificate is None):
        raise UnsupportedCommand(
            "a signed OCPP 1.6 update needs both a signature and a signing certificate"
        )
    firmware: Payload = {
        "location": command.location,
        "retrieveDateTime": command.retrieve_at.isoformat(),
    }
    if command.install_at is not None:
        firmware["installDateTime"] = command.install_at.isoformat()
    if command.signing_certificate is not None:
        firmware["signingCertificate"] = command.signing_certificate
    if command.signature is not None:
        firmware["signature"] = command.signature
    return _retries(command, {"requestId": command.request_id, "firmware": firmware})
