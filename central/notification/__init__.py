"""The notification service: events in, email / SMS / push out, per user preferences."""
