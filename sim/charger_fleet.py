"""Former home of the fleet helpers, now ``sim.charger.fleet`` (issue 11). Kept only while
evpark/demo.py imports them from here; delete once it does not."""

from sim.charger.fleet import FleetOptions, fleet_configs, run_fleet

__all__ = ["FleetOptions", "fleet_configs", "run_fleet"]
