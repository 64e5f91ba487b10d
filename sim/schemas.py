"""Former home of ``OcppVersion``, now ``sim.charger`` (issue 11). Kept only while bench/
and tests/ import it from here; delete once they do not."""

from sim.charger.schemas import OcppVersion

__all__ = ["OcppVersion"]
