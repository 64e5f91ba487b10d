"""The technician's web UI of the edge: server-rendered pages, live updates over
server-sent events, logins with roles, and actions on chargers and slots.

Served by the edge daemon itself with everything it needs in this package (templates and
static files): it works on a site with no internet.
"""
