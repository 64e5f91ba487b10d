"""What the OCPP load benchmark (``bench.ocpp_load``) runs against: the bare websockets echo
server and the edge daemon, each started fresh as a process on free ports (or an edge
already running, ``--url``), and stopped at the end with a note on how it stopped.

The processes, ports and site file come from ``tests.harness``; this module adds the
bench's choices: the echo server's command, the edge's site (no heartbeats in the run,
any id tag, no broker), the ``--edge-cmd`` template and its placeholders.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.ports import free_port
from tests.harness.processes import EVPARK, DaemonProcess
from tests.harness.site_config import write_site_toml

DEFAULT_EDGE_CMD = "{evpark} edge run --config {config} --data-dir {data_dir} --log-format json"
ECHO_SERVER = Path(__file__).resolve().with_name("echo_server.py")


def say(text: str) -> None:
    sys.stderr.write(f"[bench] {text}\n")
    sys.stderr.flush()


class BenchError(Exception):
    """The bench could not run (a target did not start, a worker crashed, ...)."""


@dataclass
class Target:
    name: str  # "echo" or "edge"
    url: str  # ws://host:port/ocpp
    daemon: DaemonProcess | None = None  # None: not started by the bench
    pid: int | None = None  # for memory and CPU figures
    notes: list[str] = field(default_factory=list)

    def check_alive(self) -> None:
        """ProcessFailed if the bench started it and it has exited."""
        if self.daemon is not None:
            self.daemon.check_alive()


def _stop(target: Target, timeout: float = 30.0) -> None:
    """SIGTERM; how it went (cleanly, with an exit code, killed) goes to the notes."""
    daemon = target.daemon
    if daemon is None or not daemon.alive():
        return
    started = time.monotonic()
    code = daemon.stop(within=timeout)
    took = time.monotonic() - started
    if code is None:
        target.notes.append(f"did not stop within {timeout:.0f} s of SIGTERM; killed")
    elif code != 0:
        target.notes.append(f"exit code {code} after SIGTERM ({took:.1f} s)")
    else:
        target.notes.append(f"stopped cleanly {took:.1f} s after SIGTERM")


@contextlib.contextmanager
def _running(target: Target, port: int, timeout: float) -> Iterator[Target]:
    """``target`` once its process listens on ``port``; stopped at the end."""
    assert target.daemon is not None
    target.daemon.start()
    target.pid = target.daemon.pid
    try:
        target.daemon.wait_for_port(port, within=timeout)
        yield target
    finally:
        _stop(target)


@contextlib.contextmanager
def echo_target(event_loop: str, host: str = "127.0.0.1") -> Iterator[Target]:
    port = free_port(host)
    with tempfile.TemporaryDirectory(prefix="evpark-bench-echo-") as tmp:
        command = [sys.executable, str(ECHO_SERVER), "--host", host, "--port", str(port)]
        daemon = DaemonProcess(
            "echo server", [*command, "--event-loop", event_loop], Path(tmp) / "echo.log"
        )
        with _running(Target("echo", f"ws://{host}:{port}/ocpp", daemon), port, 20) as target:
            yield target


def site_sections(
    ocpp_port: int, http_port: int, data_dir: Path, mqtt_url: str, event_loop: str = "auto"
) -> dict[str, Any]:
    """The temporary site configuration the bench runs the edge with."""
    return {
        "site": {"id": "bench", "name": "evpark OCPP benchmark", "environment": "development"},
        "ocpp": {"host": "127.0.0.1", "port": ocpp_port, "auto_register": True,
                 "heartbeat_interval": 86400},
        "http": {"host": "127.0.0.1", "port": http_port},
        "storage": {"data_dir": data_dir},
        "authorization": {"allow_any_id_tag": True},
        "mqtt": {"url": mqtt_url, "embedded": False},
        "runtime": {"event_loop": event_loop},
    }  # fmt: skip


@contextlib.contextmanager
def edge_target(args: argparse.Namespace) -> Iterator[Target]:
    if args.url:
        yield Target("edge", args.url.rstrip("/"), None, args.edge_pid)
        return
    tmp_ctx: contextlib.AbstractContextManager[str]
    if args.keep_data:
        tmp_ctx = contextlib.nullcontext(tempfile.mkdtemp(prefix="evpark-bench-edge-"))
    else:
        tmp_ctx = tempfile.TemporaryDirectory(prefix="evpark-bench-edge-")
    with tmp_ctx as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        ocpp_port, http_port = free_port(), free_port()
        mqtt_url = args.mqtt_url or f"mqtt://127.0.0.1:{free_port()}"
        config = write_site_toml(
            tmp_path / "site.toml",
            site_sections(ocpp_port, http_port, data_dir, mqtt_url, args.event_loop),
            comment="written by bench/ocpp_load.py",
        )
        placeholders = {
            "evpark": EVPARK,
            "python": sys.executable,
            "config": str(config),
            "data_dir": str(data_dir),
            "ocpp_port": str(ocpp_port),
            "http_port": str(http_port),
        }
        command = [part.format(**placeholders) for part in shlex.split(args.edge_cmd)]
        log = Path(args.edge_log) if args.edge_log else tmp_path / "edge.log"
        log.write_bytes(b"")  # this run's log only
        say(f"starting the edge: {shlex.join(command)} (log: {log})")
        target = Target(
            "edge", f"ws://127.0.0.1:{ocpp_port}/ocpp", DaemonProcess("edge", command, log)
        )
        try:
            with _running(target, ocpp_port, args.start_timeout):
                yield target
        finally:
            if args.keep_data:
                say(f"kept the edge's config, data and log in {tmp_path}")
