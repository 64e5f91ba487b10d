"""The parking service: slots, reservations, status per site and slot type, history."""
