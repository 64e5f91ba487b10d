"""Load management as the daemon runs it (issue 14): the pure decision of
:mod:`edge.core.power` fed from the site's chargers and sessions, and its limits sent to
the chargers as charging profiles (:mod:`edge.power.manager`)."""
