"""What an odd word in a sampled value's field means for the reading (no known quirk of
a vendor's fitting it).

``context`` and ``location`` describe the reading: without them it is still a reading of
the measurand it names, so the field is dropped and the reading kept -- but only where the
sample names its measurand, or it would be read as the default energy register. The other
fields change what the number is (``measurand``, ``unit``, ``phase`` -- a phase read as a
total --, 1.6 ``format``): such a sample is dropped, the others of the message are kept.
"""

from __future__ import annotations

from typing import Any, Final

# every field whose enum is tolerated (the ones a sampled value has, in either version)
FIELDS: Final = ("context", "measurand", "unit", "phase", "location", "format")
DESCRIPTIVE: Final = frozenset({"context", "location"})


def repair(sample: dict[str, Any], field: str) -> bool:
    """Drop ``field`` from ``sample`` if the reading survives it; False: drop the sample."""
    if field not in DESCRIPTIVE or "measurand" not in sample:
        return False
    del sample[field]
    return True
