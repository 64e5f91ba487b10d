"""CPU and memory of everything a central scale run keeps busy, from /proc: central's
processes, the bench itself, the NATS server (shared with whatever else uses it) and the
PostgreSQL backends connected to the run's databases."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import asyncpg

from tests.harness.central_cluster import CentralCluster
from tests.harness.processes import ProcessProbe
from tests.harness.shared_services import PG_HOST, PG_PORT, PG_USER


class Probes:
    """CPU and peak RSS of central's processes, the bench itself, the NATS server and
    the PostgreSQL backends serving the run's databases."""

    def __init__(self, cluster: CentralCluster) -> None:
        self._cluster = cluster
        self._start: dict[str, float] = {}
        self._backends_start: dict[int, float] = {}
        # held from begin to end: PostgreSQL's connections run out under load (its 100 are
        # shared by every test and bench on the machine), and the last look needs one
        self._admin: asyncpg.Connection | None = None

    def _processes(self) -> dict[str, ProcessProbe]:
        probes = {name: ProcessProbe(pid) for name, pid in self._cluster.pids().items()}
        probes["bench (load generator)"] = ProcessProbe(os.getpid())
        nats_pid = _pid_of("nats-server")
        if nats_pid is not None:
            probes["nats-server (shared)"] = ProcessProbe(nats_pid)
        return probes

    async def begin(self) -> None:
        self._admin = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres"
        )
        self._start = {n: p.cpu_seconds() or 0.0 for n, p in self._processes().items()}
        self._backends_start = {
            pid: ProcessProbe(pid).cpu_seconds() or 0.0 for pid in await self._backends()
        }

    async def end(self, events: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        per = max(events, 1)
        for name, probe in self._processes().items():
            cpu = (probe.cpu_seconds() or 0.0) - self._start.get(name, 0.0)
            out[name] = {
                "cpu_s": round(cpu, 1),
                "cpu_ms_per_event": round(cpu * 1000 / per, 3),
                "peak_rss_mb": round(probe.peak_rss_mb() or 0.0),
            }
        backends = await self._backends()
        cpu = sum(
            (ProcessProbe(pid).cpu_seconds() or 0.0) - self._backends_start.get(pid, 0.0)
            for pid in backends
        )
        out[f"postgresql ({len(backends)} backends)"] = {
            "cpu_s": round(cpu, 1),
            "cpu_ms_per_event": round(cpu * 1000 / per, 3),
            "peak_rss_mb": None,
        }
        assert self._admin is not None
        await self._admin.close()
        return out

    async def _backends(self) -> list[int]:
        assert self._admin is not None, "begin() first"
        rows = await self._admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[])",
            list(self._cluster.database_names.values()),
        )
        return [r["pid"] for r in rows]


def _pid_of(command: str) -> int | None:
    """A process whose command name is ``command`` (read from /proc), if any."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() == command:
                    return int(proc.name)
            except OSError:
                continue
    return None
