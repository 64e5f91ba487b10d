"""OCPP 1.6J for the simulated charger: the messages it sends (``messages``), its
answers to the central system's calls (``commands``) and its configuration keys
(``settings``)."""

from sim.charger.v16.commands import Charger16

__all__ = ["Charger16"]
