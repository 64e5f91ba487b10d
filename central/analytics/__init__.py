"""The analytics service: every event into ``event_logs``, usage / revenue / health figures."""
