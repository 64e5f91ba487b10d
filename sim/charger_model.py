"""Former home of ``SimChargerConfig``, now ``sim.charger`` (issue 11). Kept only while
evpark/demo.py, bench/ and tests/ import it from here; delete once they do not."""

from sim.charger.model import SimChargerConfig

__all__ = ["SimChargerConfig"]
