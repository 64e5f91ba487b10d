"""evpark edge: the per-site daemon (OCPP central system, site model, SQLite store,
MQTT sensors, sync to central, local web UI)."""
