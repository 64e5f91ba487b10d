"""OCPP 1.6J and 2.0.1 handlers: translate protocol messages to and from the edge's
version-neutral site model. No SQL and no sockets in here."""
