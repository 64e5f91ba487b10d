"""OCPP-J RPC framing: parse and encode CALL, CALLRESULT and CALLERROR frames.

A frame that cannot be read raises :class:`FrameError` carrying the CALLERROR to answer
with (``unique_id`` is ``"-1"`` when the message id itself could not be read).

Frames nest at most :data:`MAX_DEPTH` levels (the frame's array included). The deepest
official payload (2.0.1 ReportChargingProfiles) nests 13; vendor data (DataTransfer's
``data`` is any JSON) gets room to spare, but not the 254 levels at which orjson can no
longer write it back out (to the message log, to central): a deeper frame is refused
whole with FormationViolation (1.6) / FormatViolation (2.0.1), the code for a payload
that does not have the structure its action allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from ocpp_handlers.schemas import Version

CALL: Final = 2
CALLRESULT: Final = 3
CALLERROR: Final = 4
UNREADABLE_ID: Final = "-1"
MAX_UNIQUE_ID: Final = 36
MAX_DEPTH: Final = 32


@dataclass(slots=True)
class Call:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(slots=True)
class CallResult:
    unique_id: str
    payload: dict[str, Any]


@dataclass(slots=True)
class CallError:
    unique_id: str
    code: str
    description: str
    details: dict[str, Any]


Frame = Call | CallResult | CallError


class FrameError(Exception):
    """A frame that is not well-formed OCPP-J; answer with this CALLERROR."""

    def __init__(self, unique_id: str, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.unique_id = unique_id
        self.code = code
        self.description = description


def _rpc_error(version: Version) -> str:
    return "ProtocolError" if version is Version.V16 else "RpcFrameworkError"


def parse(version: Version, raw: str | bytes) -> Frame:
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        code = "FormationViolation" if version is Version.V16 else "RpcFrameworkError"
        raise FrameError(UNREADABLE_ID, code, "frame is not valid JSON") from err
    if not isinstance(message, list) or len(message) < 3:
        raise FrameError(UNREADABLE_ID, _rpc_error(version), "frame is not an OCPP-J array")
    message_type, unique_id = message[0], message[1]
    if not isinstance(unique_id, str) or not unique_id or len(unique_id) > MAX_UNIQUE_ID:
        raise FrameError(UNREADABLE_ID, _rpc_error(version), "message id is not a string of 1-36")
    if type(message_type) is not int:  # 2.0 == 2 and True == 1 in Python, not in OCPP-J
        code = "FormationViolation" if version is Version.V16 else "RpcFrameworkError"
        raise FrameError(unique_id, code, "message type id must be the integer 2, 3 or 4")
    # Counting brackets is cheap and bounds the depth; only frames with many are walked.
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    if text.count("[") + text.count("{") > MAX_DEPTH and _deeper_than(message, MAX_DEPTH):
        code = "FormationViolation" if version is Version.V16 else "FormatViolation"
        raise FrameError(unique_id, code, f"frame nests deeper than {MAX_DEPTH} levels")
    if message_type == CALL:
        if len(message) != 4 or not isinstance(message[2], str):
            raise FrameError(unique_id, _rpc_error(version), "CALL must be [2, id, action, {}]")
        if not isinstance(message[3], dict):
            code = "FormationViolation" if version is Version.V16 else "FormatViolation"
            raise FrameError(unique_id, code, "CALL payload must be a JSON object")
        return Call(unique_id, message[2], message[3])
    if message_type == CALLRESULT:
        payload = message[2]
        if len(message) != 3 or not isinstance(payload, dict):
            raise FrameError(unique_id, _rpc_error(version), "CALLRESULT must be [3, id, {}]")
        return CallResult(unique_id, payload)
    if message_type == CALLERROR:
        if len(message) < 4 or not isinstance(message[2], str):
            raise FrameError(unique_id, _rpc_error(version), "CALLERROR must be [4, id, code, …]")
        details = message[4] if len(message) > 4 and isinstance(message[4], dict) else {}
        return CallError(unique_id, message[2], str(message[3]), details)
    code = "MessageTypeNotSupported" if version is Version.V201 else "ProtocolError"
    raise FrameError(unique_id, code, f"unknown message type {message_type!r}")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` arrays/objects (walked without recursion)."""
    level: list[Any] = [value]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        children: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                children.extend(v for v in item.values() if isinstance(v, dict | list))
            elif isinstance(item, list):
                children.extend(v for v in item if isinstance(v, dict | list))
        level = children
    return False


def encode_call(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    return orjson.dumps([CALL, unique_id, action, payload]).decode()


def encode_result(unique_id: str, payload: dict[str, Any]) -> str:
    return orjson.dumps([CALLRESULT, unique_id, payload]).decode()


def encode_error(
    unique_id: str, code: str, description: str, details: dict[str, Any] | None = None
) -> str:
    return orjson.dumps([CALLERROR, unique_id, code, description[:255], details or {}]).decode()
