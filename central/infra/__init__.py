"""Central's infrastructure: what every service runs on, and nothing of what they do.

The event bus (:mod:`~central.infra.bus`: in process, or NATS JetStream at scale), the
cache (in process, or Redis), databases and migrations, outbound HTTP with retries and
circuit breakers, supervised background loops, logging, the ASGI layers every request
passes (body limits, gzip bodies, request context), paging of list endpoints, and datetime
arithmetic that saturates instead of overflowing.

The rule: infra imports no service (``central.parking``, ``central.charging``, ...) nor
anything that does (``central.settings`` gathers the services' settings, so infra takes
plain values or its own settings models instead); services and the composition root
import infra, never the other way (``tests/test_layers.py`` checks it).
"""
