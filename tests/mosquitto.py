"""A real Mosquitto for tests, on a free port, one per test.

Use it through a small fixture in the test module::

    @pytest.fixture
    def broker(tmp_path: Path) -> Iterator[Mosquitto]:
        with running_mosquitto(tmp_path) as mosquitto:
            yield mosquitto

Without the ``mosquitto`` binary the test is skipped; under ``CI=true`` it fails
(``tests.services.require_binary``). Retained messages persist across ``restart()``
like on a real site (``persistence true``); ``restart(wipe=True)`` starts empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.harness.ports import free_port
from tests.harness.processes import DaemonProcess, ProcessFailed
from tests.services import require_binary


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_certificates(workdir: Path, host: str = "127.0.0.1") -> TlsFiles:
    """A throw-away CA and a server certificate for ``host`` (IP SAN), with openssl."""
    openssl = require_binary("openssl")
    ca, ca_key = workdir / "ca.pem", workdir / "ca.key"
    cert, key, csr = workdir / "server.pem", workdir / "server.key", workdir / "server.csr"
    ext = workdir / "server.ext"
    ext.write_text(f"subjectAltName=IP:{host}\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sign = ["-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "1", "-extfile", ext]
    for command in (
        [openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-subj", "/CN=test CA"],
        [openssl, "req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={host}"],
        [openssl, "x509", "-req", "-in", csr, *sign, "-out", cert],
    ):
        subprocess.run([str(part) for part in command], check=True, capture_output=True)
    return TlsFiles(ca, cert, key)


class Mosquitto:
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        tls: TlsFiles | None = None,
        users: dict[str, str] | None = None,
        acl_file: Path | None = None,
    ) -> None:
        """``tls``: serve MQTT over TLS only; ``users``: refuse anonymous clients;
        ``acl_file``: who may read and write which topics (config/mosquitto/acl)."""
        self.binary = require_binary("mosquitto")
        self.workdir = workdir
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.tls = tls
        self.config = workdir / "mosquitto.conf"
        self.log_file = workdir / "mosquitto.log"
        self.db_dir = workdir / "mosquitto-db"
        self.db_dir.mkdir(parents=True, exist_ok=True)
        extra = ""
        if tls is not None:
            extra += f"cafile {tls.ca}\ncertfile {tls.cert}\nkeyfile {tls.key}\n"
        if users:
            password_file = workdir / "passwords"
            password_file.touch(mode=0o600)
            for user, password in users.items():
                subprocess.run(
                    [require_binary("mosquitto_passwd"), "-b", password_file, user, password],
                    check=True,
                    capture_output=True,
                )
            extra += f"allow_anonymous false\npassword_file {password_file}\n"
        else:
            extra += "allow_anonymous true\n"
        if acl_file is not None:
            extra += f"acl_file {acl_file}\n"
        self.config.write_text(
            f"listener {self.port} {self.host}\n"
            + extra
            # started as root, Mosquitto would switch to the `mosquitto` user, who cannot
            # write its database and log into our temporary directory
            + f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
            "persistence true\n"
            f"persistence_location {self.db_dir}/\n"
            "autosave_interval 0\n"
            f"log_dest file {self.log_file}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )
        # its own log goes to log_file; what it says before it can log, to its output
        self._daemon = DaemonProcess(
            "mosquitto", [self.binary, "-c", str(self.config)], workdir / "mosquitto.out"
        )

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._daemon.start()
        try:
            self._daemon.wait_for_port(self.port, self.host, within=timeout)
        except ProcessFailed:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM and wait: Mosquitto saves its retained messages on the way out."""
        self._daemon.stop(within=10)

    def restart(self, *, wipe: bool = False) -> None:
        self.stop()
        if wipe:
            for file in self.db_dir.iterdir():
                file.unlink()
        self.start()

    @property
    def running(self) -> bool:
        return self._daemon.alive()


@contextlib.contextmanager
def running_mosquitto(workdir: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(workdir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def mosquitto_pub(
    broker: Mosquitto,
    topic: str,
    payload: bytes | str,
    *,
    retain: bool = False,
    qos: int = 1,
    user: tuple[str, str] | None = None,
) -> None:
    """Publish with the real ``mosquitto_pub`` client: an independent publisher."""
    binary = require_binary("mosquitto_pub")
    data = payload.encode() if isinstance(payload, str) else payload
    command = [binary, "-h", broker.host, "-p", str(broker.port), "-t", topic, "-q", str(qos)]
    if broker.tls is not None:
        command += ["--cafile", str(broker.tls.ca)]
    if user is not None:
        command += ["-u", user[0], "-P", user[1]]
    if retain:
        command.append("-r")
    # -s: the payload from stdin, bytes as they are; -n: a zero-length payload
    command.append("-s" if data else "-n")
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(10):
        _, stderr = await process.communicate(data)
    if process.returncode != 0:
        raise RuntimeError(f"mosquitto_pub failed ({process.returncode}): {stderr.decode()}")
