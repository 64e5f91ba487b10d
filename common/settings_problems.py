"""pydantic's validation errors as an operator reads them: one (key, message) per problem.

The edge's ``config check`` and central's settings both report every problem at once, each
naming the dotted key to change (``rate_limit.burst``), never a traceback.
"""

from __future__ import annotations

from pydantic import ValidationError

# pydantic's wording, and what it means in a configuration
_PLAIN = {"Extra inputs are not permitted": "unknown setting"}


def validation_problems(err: ValidationError) -> list[tuple[str, str]]:
    """(dotted key, message) for each error; a validator's message of several lines (a list
    of cross-field problems) gives one problem a line. A whole-model error is ``(config)``."""
    out: list[tuple[str, str]] = []
    for error in err.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(config)"
        message = error["msg"].removeprefix("Value error, ")
        message = _PLAIN.get(message, message)
        out += [(field, line) for line in message.split("\n")]
    return out
