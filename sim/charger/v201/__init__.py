"""OCPP 2.0.1 for the simulated charging station: the messages it sends (``messages``),
its answers to the CSMS's calls (``commands``) and its device model (``settings``)."""

from sim.charger.v201.commands import Charger201

__all__ = ["Charger201"]
