"""Run what a deployment gives its containers as local processes on this machine.

A compose file or Kubernetes manifests are read into :class:`ContainerSpec` lists
(:mod:`tests.deploy.containers`); a :class:`LocalDeployment` runs them: each server a
child process (``evpark <args>`` with the container's environment), one-shot containers
to their end, health checks as the container would run them. Everything a container sees
is translated for this machine by :class:`tests.deploy.rewrite.LocalView`: host names and
ports, PostgreSQL URLs, container paths.

Shared services are isolated per run: the deployment's PostgreSQL databases are created
under a prefix unique to the run and dropped afterwards, central's processes get a bus
and a cache namespace of their own (their NATS streams and Redis keys are deleted
afterwards). Missing services skip on a laptop and fail under ``CI=true``.

Use::

    async with LocalDeployment(tmp_path, specs, externals=..., databases=...) as run:
        await run.up()                     # in order: one-shots to their end, servers healthy
        base = run.url("gateway", 8000)    # http://127.0.0.1:<its local port>
        ran = await run.run_in("gateway", "central", "keys", "create", "--scope", "operator")
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from tests.deploy.containers import EVPARK_IMAGE_ENTRYPOINT, ContainerSpec, External
from tests.deploy.rewrite import LocalView, PostgresTarget
from tests.harness.ports import free_port, http_ok
from tests.harness.processes import (
    EVPARK,
    DaemonProcess,
    ProcessFailed,
    Ran,
    run_evpark_async,
    stop_all,
)
from tests.harness.shared_services import (
    PG_PORT,
    PG_USER,
    delete_cache_keys,
    delete_streams,
    pg_databases,
    require_nats,
    require_redis,
)
from tests.services import require_binary

HEALTH_CHECK_TIMEOUT_S = 10.0


class LocalDeployment:
    """``specs`` in start order (dependencies first). ``externals``: services of the
    deployment found on this machine. ``postgres_host``: the deployment's name of its
    PostgreSQL (its URLs are pointed at the local server); ``databases``: the databases
    the deployment expects there (its init script's), created for this run."""

    def __init__(
        self,
        workdir: Path,
        specs: Sequence[ContainerSpec],
        *,
        externals: Sequence[External] = (),
        postgres_host: str | None = None,
        databases: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.specs = list(specs)
        self.databases = list(databases)
        run_id = uuid.uuid4().hex[:10]
        self.database_prefix = f"t{run_id}_"
        self.bus_namespace = f"t{run_id}"
        self.cache_namespace = f"evpark-test-{run_id}:"
        self.addresses: dict[tuple[str, int], int] = {
            (external.host, external.port): external.local_port for external in externals
        }
        for spec in self.specs:
            for port in spec.ports:
                self.addresses.setdefault((spec.name, port), free_port())
        self.postgres = (
            PostgresTarget(postgres_host, PG_PORT, PG_USER, self.database_prefix)
            if postgres_host is not None
            else None
        )
        self.daemons: dict[str, DaemonProcess] = {}
        self._cleanup = AsyncExitStack()

    # -- lifetime ------------------------------------------------------------------

    async def __aenter__(self) -> LocalDeployment:
        await self._cleanup.__aenter__()
        try:
            if self.databases:
                names = [self.database_prefix + name for name in self.databases]
                await self._cleanup.enter_async_context(pg_databases(names))
            if any(_is_central(spec) for spec in self.specs):
                require_nats()
                require_redis()
                self._cleanup.push_async_callback(delete_streams, self.bus_namespace)
                self._cleanup.push_async_callback(delete_cache_keys, self.cache_namespace)
        except BaseException:
            await self._cleanup.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            # side by side: their shutdowns overlap instead of adding up
            await asyncio.to_thread(stop_all, self.daemons.values(), 15)
        finally:
            await self._cleanup.aclose()

    # -- running containers --------------------------------------------------------

    async def up(self, specs: Sequence[ContainerSpec] | None = None, within: float = 60) -> None:
        """Start ``specs`` (default: all) in order, as compose does with its conditions:
        a one-shot must end with 0, a server must pass its health check, before the next
        starts."""
        for spec in self.specs if specs is None else specs:
            if spec.one_shot:
                ran = await self.run(spec, within=within)
                if ran.code != 0:
                    raise ProcessFailed(
                        f"the one-shot {spec.name} exited with {ran.code}: {ran.stderr[-1500:]}"
                    )
            else:
                self.start(spec)
                await self.wait_healthy(spec.name, within=within)

    def start(self, spec: ContainerSpec) -> DaemonProcess:
        """Start a server container as a child process (its output in ``logs/<name>.log``)."""
        argv, env = self.prepare(spec)
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        daemon = DaemonProcess(spec.name, argv, logs / f"{spec.name}.log", env)
        self.daemons[spec.name] = daemon
        daemon.start()
        return daemon

    async def run(self, spec: ContainerSpec, *, stdin: str = "", within: float = 60) -> Ran:
        """Run a container of the evpark image to its end."""
        if spec.entrypoint != EVPARK_IMAGE_ENTRYPOINT:
            raise ValueError(f"{spec.name}: only the evpark image's one-shots run locally")
        argv, env = self.prepare(spec)
        return await run_evpark_async(*argv[1:], stdin=stdin, env=env, within=within)

    async def run_in(self, name: str, *args: str, stdin: str = "") -> Ran:
        """``docker compose run --rm <name> <args>``: other arguments in the container of
        service ``name`` (its environment, files and volumes)."""
        return await self.run(replace(self.spec(name), args=args, one_shot=True), stdin=stdin)

    # -- health --------------------------------------------------------------------

    def healthy(self, name: str) -> bool:
        """Does the container's health check pass now (as the container would run it)?"""
        spec = self.spec(name)
        if spec.health is None:
            raise ValueError(f"{name} has no health check")
        view = self.view(spec)
        if spec.health.url:
            return http_ok(view.text(spec.health.url))
        argv, env = self.prepare(replace(spec, entrypoint=(), args=spec.health.command))
        try:
            done = subprocess.run(
                argv,
                env={**os.environ, **env},
                capture_output=True,
                timeout=HEALTH_CHECK_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    async def wait_healthy(self, name: str, within: float = 60) -> None:
        daemon = self.daemons[name]
        what = f"its health check passes ({self.spec(name).health})"
        await asyncio.to_thread(daemon.wait_until, lambda: self.healthy(name), what, within=within)

    # -- where things are ----------------------------------------------------------

    def spec(self, name: str) -> ContainerSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def local_port(self, name: str, container_port: int) -> int:
        return self.addresses[(name, container_port)]

    def url(self, name: str, container_port: int, path: str = "") -> str:
        return f"http://127.0.0.1:{self.local_port(name, container_port)}{path}"

    def view(self, spec: ContainerSpec) -> LocalView:
        return LocalView(spec, self.addresses, self.workdir / spec.name, self.postgres)

    def prepare(self, spec: ContainerSpec) -> tuple[list[str], dict[str, str]]:
        """The container's files written and volumes made under its directory; its
        command line and environment as they run here."""
        view = self.view(spec)
        for volume in spec.volumes:
            view.local_path(volume).mkdir(parents=True, exist_ok=True)
        for path, content in spec.files.items():
            local = view.local_path(path)
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(view.text(content))
        env = view.env(spec.env)
        if _is_central(spec):
            env["EVPARK_CENTRAL_BUS_NAMESPACE"] = self.bus_namespace
            env["EVPARK_CENTRAL_CACHE_NAMESPACE"] = self.cache_namespace
        argv = view.argv(spec.argv)
        argv[0] = _program(argv[0])
        return argv, env


def _is_central(spec: ContainerSpec) -> bool:
    return spec.entrypoint == EVPARK_IMAGE_ENTRYPOINT and spec.args[:1] == ("central",)


def _program(name: str) -> str:
    """The local program for a container's: the venv's evpark and Python (the image's
    venv is on its PATH), else the system's binary of that name."""
    if name == "evpark":
        return EVPARK
    if name in ("python", "python3"):
        return sys.executable
    return require_binary(name)
