"""Simulated OCPP 1.6J and 2.0.1 chargers: one (``SimCharger``) or a fleet.

``core`` is the version-neutral charger (lifetime, connectors, the step-by-step API);
``link`` its connection to the central system; ``rpc`` the OCPP-J framing; ``schemas``
the independent check of every frame; ``protocol`` what a version implements, with
``v16`` and ``v201`` the two versions; ``model``, ``curve`` and ``offline_queue`` plain
state; ``driver`` the random driver loop; ``fleet`` many chargers from a few options
(`evpark sim chargers`, in ``sim.cli``).
"""

from sim.charger.core import ChargerStateError, SimCharger
from sim.charger.model import SimChargerConfig
from sim.charger.schemas import OcppVersion

__all__ = ["ChargerStateError", "OcppVersion", "SimCharger", "SimChargerConfig"]
