"""Sync ingest for edges: event batches up, commands down (the API in :mod:`contract.sync_api`)."""
