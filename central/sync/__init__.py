"""Sync ingest for edges: event batches up, commands down (the API in :mod:`central.wire`)."""
