"""Constrained identifiers for the HTTP APIs: bad input is a clear 422, never a 500."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import StringConstraints

from contract.envelope import SITE_ID_PATTERN

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
ID_HELP = "1-64 characters: letters, digits and _ . : - (starting with a letter or digit)"

# a site id as the sync contract has it (no ':'): no site can have another
SiteId = Annotated[str, StringConstraints(pattern=SITE_ID_PATTERN, max_length=64)]
SlotId = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
VehicleId = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
ChargerId = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
SlotType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$", max_length=32)]
IdTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,36}$", max_length=36)]

PathId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64, description=ID_HELP)]
SitePathId = Annotated[
    str,
    Path(pattern=SITE_ID_PATTERN, max_length=64, description="1-64 letters, digits, _ . -"),
]
