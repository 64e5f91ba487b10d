"""The gateway: API keys, rate limits, request ids and access logs, routing to services."""
