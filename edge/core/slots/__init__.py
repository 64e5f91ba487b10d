"""Live state of a site's parking slots: the functional core, no I/O.

Every slot has one state a technician, central and an entrance sign can trust, derived from
its occupancy sensor, its charger connector, reservations and the technician's
out-of-service flag. The model is split by concern; import each name from the module that
defines it:

- :mod:`edge.core.slots.values`: ids, slot states and conditions, aware times;
- :mod:`edge.core.slots.layout`: the site's slots and the model's times (the configuration);
- :mod:`edge.core.slots.events`: what goes in (``SlotEvent``) and comes out (``SlotOutput``);
- :mod:`edge.core.slots.machine`: one slot's state machine (debounce, visits, conditions);
- :mod:`edge.core.slots.model`: the site-wide model (``decide``, ``SlotModel``), its views
  and summary;
- :mod:`edge.core.slots.documents`: a slot and the summary as JSON (MQTT, API, web UI).
"""
