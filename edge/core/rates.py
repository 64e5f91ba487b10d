"""Which of the rates central pushed (``update_rates``) is this site's, for a completed session.

Central sends its rates as ``GET /charging/rates`` lists them (``central.charging.schema
.SiteRate``: a ``site_id``, prices, ``updated_at``); the site stores them as they came (meta
``central.rates``) and names the one in force in each ``charging.completed``, so central
prices the session with the rate the site ran under. No I/O.
"""

from __future__ import annotations

from typing import Any

RateInForce = tuple[dict[str, Any] | None, str | None]


def rate_in_force(rates: object, site_id: str) -> RateInForce:
    """``(rate, rate_id)`` of ``site_id`` among ``rates``: the site's own (the last listed),
    else one for every site (no ``site_id``), else ``(None, None)``.

    ``rate_id`` is the rate's own id when it has one, else its site and ``updated_at``
    (central's rates have no id: a rate is the site's row as of that time).
    """
    listed = [r for r in rates if isinstance(r, dict)] if isinstance(rates, list) else []
    own = [r for r in listed if r.get("site_id") == site_id]
    general = [r for r in listed if not r.get("site_id")]
    candidates = own or general
    if not candidates:
        return None, None
    chosen = candidates[-1]
    named = chosen.get("rate_id") or chosen.get("id")
    if named:
        return chosen, str(named)[:64]
    updated = chosen.get("updated_at")
    return chosen, (f"{chosen.get('site_id') or 'all'}@{updated}"[:64] if updated else None)
