"""Central in scale mode as local processes, on this machine's PostgreSQL, NATS and Redis.

A :class:`CentralCluster` takes fresh databases (one per service and the gateway's), a
NATS and a Redis namespace of its own, and runs:

* each consuming service (parking, charging, notification, analytics) as
  ``evpark central run --service NAME``, ``replicas[NAME]`` processes of it sharing its
  durable consumers (the gateways route API calls to the first);
* ``ingest_replicas`` ingest replicas: ``--service all`` with ``service_urls`` naming the
  four others, so each is a gateway with the sync service in its process (what a site
  talks to).

Everything is given back on exit: processes stopped, databases dropped, streams and
cache keys deleted. A process can be killed (SIGKILL), paused (SIGSTOP) and started again
by name (``ingest-0``, ``analytics-1``...); :meth:`pids` feeds
:class:`tests.harness.processes.ProcessProbe`. Missing services skip on a laptop and fail
under ``CI=true``.

Use::

    async with CentralCluster(tmp_path, ingest_replicas=2) as cluster:
        key = await cluster.key("site", "east")
        url = cluster.ingest_urls[0]
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from tests.harness.ports import free_port
from tests.harness.processes import (
    DaemonProcess,
    ProcessFailed,
    central_run_command,
    log_tail,
    stop_all,
)
from tests.harness.shared_services import (
    NATS_URL,
    REDIS_URL,
    delete_cache_keys,
    delete_streams,
    pg_databases,
    pg_url,
    require_nats,
    require_redis,
)

# the checkout this harness is in: its processes run its code, not the installed package's
CHECKOUT: Final = Path(__file__).resolve().parents[2]
CONSUMERS: Final = ("parking", "charging", "notification", "analytics")
DATABASES: Final = ("gateway", "sync", *CONSUMERS)
INGEST: Final = "ingest"
PLACES: Final = 3  # tries at free ports


class CentralCluster:
    def __init__(
        self,
        workdir: Path,
        *,
        ingest_replicas: int = 1,
        replicas: Mapping[str, int] | None = None,
        env: Mapping[str, str] | None = None,
        source: Path = CHECKOUT,
        start_within: float = 60.0,
    ) -> None:
        """``replicas``: processes per consuming service (default 1 each); ``env``: more
        settings for every process (``EVPARK_CENTRAL_...``); ``source``: the source tree
        whose central the processes run (default this checkout; the ``evpark`` script
        alone would import the package where it is installed, maybe another checkout)."""
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:10]
        self.bus_namespace = f"s{self.run_id}"
        self.cache_namespace = f"evpark-scale-{self.run_id}:"
        self.database_names = {name: f"evpark_scale_{self.run_id}_{name}" for name in DATABASES}
        self._start_within = start_within
        counts = {name: 1 for name in CONSUMERS} | dict(replicas or {})
        self._names = [f"{name}-{i}" for name, count in counts.items() for i in range(count)]
        self._names += [f"{INGEST}-{i}" for i in range(ingest_replicas)]
        self._settings = {
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(source), os.environ.get("PYTHONPATH")])
            ),
            "EVPARK_CENTRAL_DATA_DIR": str(workdir / "data"),
            # one database per service: {service} is replaced by each process
            "EVPARK_CENTRAL_DATABASE_URL": pg_url(f"evpark_scale_{self.run_id}_{{service}}"),
            "EVPARK_CENTRAL_BUS_URL": NATS_URL,
            "EVPARK_CENTRAL_BUS_NAMESPACE": self.bus_namespace,
            "EVPARK_CENTRAL_CACHE_URL": REDIS_URL,
            "EVPARK_CENTRAL_CACHE_NAMESPACE": self.cache_namespace,
            "EVPARK_CENTRAL_INTERNAL_TOKEN": f"scale-{self.run_id}",
            # the machine's PostgreSQL allows 100 clients, shared with whatever else runs:
            # at most 8 per engine (an ingest replica has two: gateway and sync)
            "EVPARK_CENTRAL_DATABASE_POOL_SIZE": "4",
            "EVPARK_CENTRAL_DATABASE_MAX_OVERFLOW": "4",
            **(env or {}),
        }
        self._place()
        self._stack = AsyncExitStack()

    def _place(self) -> None:
        """A free port for every process, and the processes to run on them."""
        ports = {name: free_port() for name in self._names}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        routes = {name: self.urls[f"{name}-0"] for name in CONSUMERS}
        self.env = {**self._settings, "EVPARK_CENTRAL_SERVICE_URLS": json.dumps(routes)}
        self.daemons = {
            name: DaemonProcess(
                name,
                central_run_command(port, "--service", _role(name)),
                self.workdir / f"{name}.log",
                self.env,
            )
            for name, port in ports.items()
        }

    @property
    def ingest_urls(self) -> list[str]:
        """The gateways (with sync) the sites post to."""
        return [url for name, url in self.urls.items() if name.startswith(f"{INGEST}-")]

    def database_url(self, owner: str) -> str:
        """The SQLAlchemy URL of a service's (or the gateway's) database."""
        return pg_url(self.database_names[owner])

    async def __aenter__(self) -> Self:
        require_nats()
        require_redis()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            await self._stack.enter_async_context(pg_databases(list(self.database_names.values())))
            self._stack.push_async_callback(delete_cache_keys, self.cache_namespace)
            self._stack.push_async_callback(delete_streams, self.bus_namespace)
            self._stack.push_async_callback(self._stop_all)
            for attempt in range(PLACES):
                try:
                    await self._start_all()
                    break
                except ProcessFailed as err:
                    # a free port is free when asked, not always when bound: another
                    # process on this machine may have taken it in between
                    if "address already in use" not in str(err) or attempt == PLACES - 1:
                        raise
                    await self._stop_all()
                    self._place()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _start_all(self) -> None:
        # the first of each kind migrates its databases alone, then the others start
        first = [name for name in self.daemons if name.endswith("-0")]
        await self._start(first)
        await self._start([name for name in self.daemons if name not in first])

    async def _stop_all(self) -> None:
        await asyncio.to_thread(stop_all, self.daemons.values(), 15.0)

    async def _start(self, names: list[str]) -> None:
        """Start them side by side and wait until each is healthy (in a thread: the event
        loop is free meanwhile); ProcessFailed names the first that is not."""
        for name in names:
            self.daemons[name].start()

        def wait() -> None:
            for name in names:
                url = f"{self.urls[name]}/healthz"
                self.daemons[name].wait_healthy(url, within=self._start_within)

        await asyncio.to_thread(wait)

    async def keys(
        self,
        scope: str,
        sites: list[str | None],
        *,
        user: str | None = None,
        vehicles: tuple[str, ...] = (),
    ) -> list[str]:
        """New API keys of ``scope``, one per entry of ``sites`` (a site key's site, None
        for the others), written to the gateway's database as ``keys create`` does."""
        from central.context import utc_now
        from central.gateway.keys import KeyStore
        from central.infra.db import create_engine

        engine = create_engine(self.database_url("gateway"))
        store = KeyStore(engine, utc_now)
        # a commit each: side by side, a few at a time, they wait on the disk together
        room = asyncio.Semaphore(8)

        async def create(site: str | None) -> str:
            async with room:
                return await store.create(scope, site, user_id=user, vehicle_ids=vehicles)

        try:
            async with asyncio.TaskGroup() as tasks:
                made = [tasks.create_task(create(site)) for site in sites]
        finally:
            await engine.dispose()
        return [task.result() for task in made]

    def kill(self, name: str) -> None:
        """SIGKILL one process (``ingest-1``, ``analytics-0``...): a crash."""
        self.daemons[name].kill()

    def pause(self, name: str) -> None:
        """SIGSTOP one process: it holds what it has (connections, events delivered to
        it) and does nothing until :meth:`resume`."""
        self._signal(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self._signal(name, signal.SIGCONT)

    def _signal(self, name: str, sig: signal.Signals) -> None:
        pid = self.daemons[name].pid
        if pid is None or not self.daemons[name].alive():
            raise ProcessLookupError(f"{name} is not running")
        os.kill(pid, sig)

    async def restart(self, name: str) -> None:
        """Start a killed or stopped process again and wait until it is healthy."""
        await self._start([name])

    def pids(self) -> dict[str, int]:
        """Process name -> PID of every process running now."""
        return {
            name: daemon.pid
            for name, daemon in self.daemons.items()
            if daemon.pid is not None and daemon.alive()
        }

    def logs(self) -> dict[str, Path]:
        return {name: daemon.log for name, daemon in self.daemons.items()}

    def count_in_logs(self, needle: str) -> dict[str, int]:
        """How many log lines of each process contain ``needle`` (only those with any)."""
        found: dict[str, int] = {}
        for name, log in self.logs().items():
            if log.exists():
                with log.open(errors="replace") as lines:
                    hits = sum(needle in line for line in lines)
                if hits:
                    found[name] = hits
        return found

    def log_tail(self, name: str, lines: int = 30) -> str:
        return log_tail(self.daemons[name].log, lines)


def _role(process: str) -> str:
    """``--service`` of a process name: ``ingest-N`` is gateway and sync (``all`` with the
    other services named in ``service_urls``), ``analytics-N`` is analytics."""
    kind = process.rsplit("-", 1)[0]
    return "all" if kind == INGEST else kind
