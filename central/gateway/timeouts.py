"""How long the gateway waits for a service, by route.

Most calls get ``resilience.timeout_s``. Two wait by design: the commands long-poll
(``?wait=`` seconds more) and an upload of events, which sync stores in one transaction
and which may take long under a reconnect storm (``resilience.ingest_timeout_s``). A 503
there would be wrong twice over: the batch is stored anyway, and the edge sends it again.
"""

from __future__ import annotations

from typing import Final

from central.infra.resilience import ResilienceSettings
from contract.sync_api import EVENTS_PATH

MAX_WAIT_S: Final = 120.0  # the long-poll's own bound (sync caps it lower by settings)


def call_timeout(method: str, path: str, query: str, settings: ResilienceSettings) -> float:
    """Seconds to wait for the answer to ``method path?query``."""
    if method.upper() == "POST" and path == EVENTS_PATH:
        return max(settings.ingest_timeout_s, settings.timeout_s)
    return settings.timeout_s + _wait_param(query)


def _wait_param(query: str) -> float:
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "wait":
            try:
                return min(max(float(value), 0.0), MAX_WAIT_S)
            except ValueError:
                return 0.0
    return 0.0
