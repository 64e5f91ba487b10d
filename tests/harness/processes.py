"""Child processes of tests and benches: the ``evpark`` command line, a daemon with its log
file, one-shot ``evpark`` commands, and what a process uses (from ``/proc``).

A daemon's output goes to a log file rather than a pipe: a pipe nobody reads fills up and
blocks the daemon, and the file is still there to read when something went wrong. Every
failure to start names the process and ends with the tail of that log.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.harness.ports import http_ok, listening, wait_for

# the console script next to this interpreter: the command users run, in the same venv
EVPARK: Final = str(Path(sys.executable).with_name("evpark"))


def evpark_command(*args: str) -> list[str]:
    """``evpark <args>`` as a command line."""
    return [EVPARK, *args]


def edge_run_command(config: Path, data_dir: Path, *extra: str) -> list[str]:
    """``evpark edge run`` on a site file and a data directory, logging JSON lines."""
    return evpark_command(
        "edge", "run", "--config", str(config), "--data-dir", str(data_dir),
        "--log-format", "json", *extra,
    )  # fmt: skip


def central_run_command(port: int, *extra: str) -> list[str]:
    """``evpark central run`` (all in one) on ``port``, logging JSON lines."""
    return evpark_command("central", "run", "--port", str(port), "--log-format", "json", *extra)


class ProcessFailed(RuntimeError):
    """A child process exited or did not get ready in time; the message ends with its log."""


def log_tail(path: Path | None, lines: int = 30) -> str:
    """The last ``lines`` of a log file under a header line, or "" when there is none."""
    if path is None or not path.exists():
        return ""
    tail = path.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {path} ---\n" + "\n".join(tail)


class DaemonProcess:
    """One long-running child process, its stdout and stderr appended to ``log``.

    ``start()`` may be called again after ``stop()`` or ``kill()``: a restart, the same log.
    ``env`` adds to (or overrides) this process's environment.
    """

    def __init__(
        self, name: str, command: Sequence[str], log: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log = log
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_code(self) -> int | None:
        """The exit code once it has exited; None while it runs or before it started."""
        return None if self.process is None else self.process.poll()

    def check_alive(self) -> None:
        """Raise ProcessFailed if it was started and has exited since."""
        code = self.exit_code()
        if code is not None:
            raise ProcessFailed(f"the {self.name} exited with code {code}{self.log_tail()}")

    def wait_until(
        self, ready: Callable[[], bool], what: str, *, within: float, interval: float = 0.05
    ) -> None:
        """Poll ``ready`` while the process runs; ProcessFailed if it exits or time is up."""
        try:
            wait_for(ready, what, within=within, interval=interval, check=self.check_alive)
        except TimeoutError as err:
            raise ProcessFailed(f"the {self.name}: {err}{self.log_tail()}") from None

    def wait_for_port(self, port: int, host: str = "127.0.0.1", *, within: float = 60) -> None:
        self.wait_until(
            lambda: listening(host, port), f"it listens on {host}:{port}", within=within
        )

    def wait_healthy(self, url: str, *, within: float = 60) -> None:
        """Wait until ``url`` (its /healthz) answers 200."""
        self.wait_until(lambda: http_ok(url), f"{url} answers 200", within=within)

    def terminate(self) -> None:
        """SIGTERM without waiting: its shutdown begins (``stop`` waits for the end)."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def stop(self, within: float = 30.0) -> int | None:
        """SIGTERM, then its exit code; None when it had to be killed after ``within`` s
        (or was never started)."""
        self.terminate()
        return self.wait_exit(within)

    def wait_exit(self, within: float) -> int | None:
        """Its exit code once it exits; SIGKILL and None if it still runs after ``within`` s
        (None too when it was never started)."""
        if self.process is None:
            return None
        try:
            return self.process.wait(within)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """SIGKILL (a crash, a power cut): nothing of its own shutdown runs."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log, lines)


def stop_all(daemons: Iterable[DaemonProcess], within: float = 30.0) -> list[int | None]:
    """Stop several daemons side by side: SIGTERM to each, then each one's exit code as
    ``stop`` gives it. Their shutdowns overlap instead of adding up."""
    stopping = list(daemons)
    for daemon in stopping:
        daemon.terminate()
    return [daemon.wait_exit(within) for daemon in stopping]


@dataclass(frozen=True)
class Ran:
    """What a finished command said."""

    code: int
    stdout: str
    stderr: str


def run_evpark(
    *args: str, stdin: str = "", env: Mapping[str, str] | None = None, within: float = 60
) -> Ran:
    """``evpark <args>`` to its end, as an admin runs it: ``stdin`` in, the output captured."""
    done = subprocess.run(
        evpark_command(*args),
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=within,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


async def run_evpark_async(
    *args: str, stdin: str = "", env: Mapping[str, str] | None = None, within: float = 60
) -> Ran:
    """:func:`run_evpark` from async code: the event loop (and a daemon on it) keeps running."""
    return await asyncio.to_thread(run_evpark, *args, stdin=stdin, env=env, within=within)


def create_key(
    scope: str,
    site: str | None = None,
    *,
    data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """A new API key of ``scope`` (a site key for ``site``) from ``evpark central keys
    create``, central's data in ``data_dir`` or where ``env`` says."""
    for_site = ["--site", site] if site is not None else []
    where = ["--data-dir", str(data_dir)] if data_dir is not None else []
    ran = run_evpark("central", "keys", "create", "--scope", scope, *for_site, *where, env=env)
    if ran.code != 0:
        raise ProcessFailed(f"evpark central keys create failed: {ran.stderr[-400:]}")
    return ran.stdout.strip().splitlines()[-1]


def create_site_key(
    site: str, *, data_dir: Path | None = None, env: Mapping[str, str] | None = None
) -> str:
    """A new site key for ``site`` (see :func:`create_key`)."""
    return create_key("site", site, data_dir=data_dir, env=env)


class ProcessProbe:
    """Memory and CPU of one process, from /proc (Linux); None where it cannot be read."""

    _tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def _status_kb(self, key: str) -> float | None:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
        return None

    def rss_mb(self) -> float | None:
        kb = self._status_kb("VmRSS")
        return None if kb is None else kb / 1024.0

    def peak_rss_mb(self) -> float | None:
        kb = self._status_kb("VmHWM")
        return None if kb is None else kb / 1024.0

    def cpu_seconds(self) -> float | None:
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
