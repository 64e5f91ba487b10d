"""evpark central: the cloud services (parking, charging, notification, analytics),
sync ingest for edges, gateway, event bus and cache.

Kept free of imports: the edge imports :mod:`contract.sync_api` only.
"""
