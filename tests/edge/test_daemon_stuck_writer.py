"""`evpark edge run` with a stuck SQLite writer: /healthz says so, and SIGTERM still stops
the process promptly, non-zero (what it was given was not all committed)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import httpx
import orjson

from edge.config import StorageSection
from ocpp_handlers.schemas import Version
from tests.edge.test_daemon_process import running_edge, wait_healthy, write_config
from tests.harness.ports import free_port
from tests.ocpp_client import RawCharger
from tests.ocpp_flows import flow_for
from tests.polling import eventually


async def test_a_stuck_writer_is_unhealthy_and_sigterm_still_stops_the_daemon(
    tmp_path: Path,
) -> None:
    ocpp_port, http_port = free_port(), free_port()
    config = write_config(tmp_path / "site.toml", ocpp_port, http_port)
    with config.open("a") as toml:
        toml.write("[storage]\nwriter_stall_after = 0.5\nstop_timeout = 1\n")
    data = tmp_path / "data"

    async with running_edge(config, data) as edge:
        await wait_healthy(http_port)
        async with RawCharger(f"ws://127.0.0.1:{ocpp_port}/ocpp", "CP-STUCK", Version.V16) as cp:
            await flow_for(cp).boot()
            # another process (a backup tool, a technician's sqlite3 shell) takes the lock
            holder = sqlite3.connect(StorageSection(data_dir=data).database, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
                await cp.ws.send(orjson.dumps([2, "s1", "StatusNotification", status]).decode())

                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as api:

                    async def stalled() -> bool:
                        reply = await api.get("/healthz")
                        return reply.status_code == 503

                    await eventually(stalled, "/healthz says 503 while the writer is stuck")
                    health = (await api.get("/healthz")).json()
                assert health["status"] == "unavailable"
                assert health["store"]["writer"] == "stalled"
                assert health["store"]["queued"] >= 1
                assert health["store"]["oldest_queued_s"] > 0.5

                edge.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(edge.wait, 30)
            finally:
                holder.execute("ROLLBACK")
                holder.close()
        assert code != 0
        assert edge.stderr is not None
        logged = edge.stderr.read()
        assert b"store.writer.abandoned" in logged
