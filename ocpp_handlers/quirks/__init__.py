"""The catalogue of meter reading quirks real chargers have, in one place.

A MeterValues (either version), StopTransaction (1.6) or TransactionEvent (2.0.1) whose
sampled value carries a word outside its field's enum (a vendor's ``context``,
``measurand``, ``unit``, ``phase``, ``location`` or ``format``) would fail its schema and
lose every reading in it. Only when it fails (:func:`ocpp_handlers.schemas.validate`:
valid messages never come here) and it is valid but for those words, :func:`tolerate`
keeps every reading that is still sound and notes what it changed; the handler then
:func:`report`\\ s it (counted per field, logged once per charger and field). A real
structural error (a missing field, a wrong type) is still refused.

One module per quirk: a vendor's known word with what it means (``alfen_current_max``),
the rule for any other odd word (``fields``), and 1.6 numbers sent as numbers
(``numeric_value``). Each has a test built from a real frame (tests/ocpp_handlers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

import structlog

from ocpp_handlers.quirks import alfen_current_max, fields, numeric_value

Sample = dict[str, Any]
FIELDS: Final = fields.FIELDS
# Where a message keeps its meter values (1.6 StopTransaction: transactionData).
METER_LISTS: Final = {"MeterValues": "meterValue", "TransactionEvent": "meterValue",
                      "StopTransaction": "transactionData"}  # fmt: skip
# The key under which tolerate() leaves its notes in the payload for the handler; no
# OCPP field has a leading underscore.
QUIRKS_KEY: Final = "_quirks"
# (field, word) -> the repair of a vendor's known word; False if the sample is not its
KNOWN: Final[Mapping[tuple[str, str], Callable[[Sample], bool]]] = {
    (alfen_current_max.FIELD, alfen_current_max.VALUE): alfen_current_max.repair,
}
# Counted for /metrics (edge.metrics) per field, across the process's daemons; the log
# line is written once per (site, charger, field), for so many of them at most.
COUNTS: Final[Counter[str]] = Counter()
_logged: set[tuple[str, str, str]] = set()
LOGGED_MAX: Final = 10_000
log = structlog.get_logger(__name__)


class Oddity(NamedTuple):
    field: str
    value: str
    kept: bool  # the reading was kept (repaired), or the sample dropped


def repair_numbers(action: str, payload: dict[str, Any]) -> bool:
    """1.6 values sent as numbers made strings (``numeric_value``); True if any was."""
    entries = payload.get(METER_LISTS.get(action, ""))
    changed = False
    for entry in entries if isinstance(entries, list) else ():
        samples = entry.get("sampledValue") if isinstance(entry, dict) else None
        if isinstance(samples, list) and numeric_value.repair(samples):
            changed = True
    return changed


def tolerate(action: str, payload: dict[str, Any], enums: Mapping[str, frozenset[str]]) -> None:
    """Keep the sound readings of a schema-valid-but-for-enums meter message: each odd
    word is repaired or its sample dropped (a meter value left without samples is
    dropped too); the notes go under :data:`QUIRKS_KEY` for :func:`report`."""
    key = METER_LISTS[action]
    odd: list[Oddity] = []
    entries: list[dict[str, Any]] = []
    for entry in payload.get(key, ()):
        samples = [s for s in entry["sampledValue"] if _sound(s, enums, odd)]
        if samples:
            entry["sampledValue"] = samples
            entries.append(entry)
    if key in payload:
        payload[key] = entries
    payload[QUIRKS_KEY] = odd


def _sound(sample: Sample, enums: Mapping[str, frozenset[str]], odd: list[Oddity]) -> bool:
    sound = True
    for field in FIELDS:
        word = sample.get(field)
        allowed = enums.get(field)
        if word is None or allowed is None or word in allowed:
            continue
        known = KNOWN.get((field, word))
        kept = known(sample) if known is not None else fields.repair(sample, field)
        odd.append(Oddity(field, str(word)[:64], kept))
        sound = sound and kept
    return sound


def report(site_id: str, charger_id: str, action: str, odd: list[Oddity]) -> None:
    """Count each oddity; log the first of each field from each charger."""
    for oddity in odd:
        COUNTS[oddity.field] += 1
        seen = (site_id, charger_id, oddity.field)
        if seen in _logged or len(_logged) >= LOGGED_MAX:
            continue
        _logged.add(seen)
        log.warning(
            "ocpp.meter.quirk", charger=charger_id, action=action, field=oddity.field,
            value=oddity.value, reading="kept" if oddity.kept else "dropped",
        )  # fmt: skip
