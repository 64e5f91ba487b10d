"""The site's load manager: chargers share the grid connection and never exceed it.

Pure code, no I/O (issue 14). Import each name from the module that defines it:

- :mod:`edge.core.power.model`: the limits, the chargers, the charging sessions going in,
  and the offers coming out;
- :mod:`edge.core.power.filling`: sharing what is left under linear limits, max-min fair;
- :mod:`edge.core.power.decide`: ``decide(state, now) -> Decision``, one cycle of the
  manager;
- :mod:`edge.core.power.changes`: the order in which new limits may be sent (lower first).
"""
