"""The charging service: remote start/stop through the site, sessions, history, rates."""
