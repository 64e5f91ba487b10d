"""The test and bench harness: free ports, child processes and site configurations.

Tests and benches start real daemons (``evpark edge run``, ``evpark central run``, a
websockets echo server) on free ports with a site file written for the run; this package
is the one place that knows how:

* ``ports``: a free port, whether something listens on one, and an HTTP endpoint that answers;
* ``processes``: the ``evpark`` command line, a child process with its log file (started,
  waited for, stopped with SIGTERM then SIGKILL, several side by side, its log's tail in
  every failure), one-shot ``evpark`` commands (site and operator keys among them), and a
  process's memory and CPU from ``/proc``;
* ``site_config``: a site TOML file from keyword sections (``site_toml``).

It depends on no test framework (benches run it without pytest); what a test needs of the
services around it (PostgreSQL, Redis, NATS, Mosquitto, skip or fail) is ``tests.services``.
"""
