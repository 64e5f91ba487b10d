"""A container's view translated to this machine's: the same strings (arguments,
environment values, mounted files, health checks) with

* host names of the deployment (``parking:3001``, ``postgres:5432``, and a container's
  own ``localhost:8000``) turned into ``127.0.0.1:<local port>``, every container port
  its own free local port;
* the container's own listen ports, written ``--port N``, ``port = N`` (TOML),
  ``listener N`` (Mosquitto) or as an environment variable ``..._PORT=N``, turned into
  its local ports;
* PostgreSQL URLs pointed at the local server, its user, and databases of this run
  (``<prefix><name>``; a ``{service}`` placeholder stays for central to fill in);
* container paths (volumes and the directories of mounted files) moved under a
  directory of the container's own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.containers import ContainerSpec

_LOCAL_NAMES = ("localhost", "127.0.0.1", "0.0.0.0")
_POSTGRES_URL = re.compile(
    r"(?P<scheme>postgres(?:ql)?(?:\+\w+)?://)(?:[^@/\s\"']*@)?"
    r"(?P<host>[\w.-]+)(?::(?P<port>\d+))?/(?P<database>[\w{}]+)"
)
_LISTEN_PORT = re.compile(r"(?P<lead>--port[= ]|\bport\s*=\s*|^listener\s+)(?P<port>\d+)\b", re.M)


@dataclass(frozen=True)
class PostgresTarget:
    """Where the deployment's PostgreSQL host is found locally."""

    host: str  # the deployment's name for it, e.g. "postgres"
    local_port: int
    user: str
    database_prefix: str  # of this run's databases


class LocalView:
    """Translates strings for one container of a deployment (see the module's text)."""

    def __init__(
        self,
        spec: ContainerSpec,
        addresses: Mapping[tuple[str, int], int],
        root: Path,
        postgres: PostgresTarget | None,
    ) -> None:
        """``addresses``: (host, container port) -> local port, for every container and
        external service; ``root``: the directory standing for this container's
        filesystem."""
        self.spec = spec
        self.root = root
        self.postgres = postgres
        own = {port: addresses[(spec.name, port)] for port in spec.ports}
        self.own_ports = own
        self.addresses = {
            **addresses,
            **{(name, port): local for name in _LOCAL_NAMES for port, local in own.items()},
        }
        hosts = sorted({host for host, _ in self.addresses}, key=len, reverse=True)
        self._address = re.compile(
            r"(?<![\w.-])(?P<host>" + "|".join(map(re.escape, hosts)) + r"):(?P<port>\d+)\b"
        )
        mounted = {*spec.volumes, *(str(Path(path).parent) for path in spec.files)}
        roots = sorted((p.rstrip("/") for p in mounted if p not in ("", "/")), key=len)
        self._path = re.compile(
            r"(?<![\w.-])(?P<path>" + "|".join(map(re.escape, reversed(roots))) + r")(?=/|\b|$)"
        )
        self._has_paths = bool(roots)

    def local_path(self, container_path: str) -> Path:
        """Where a container path lives on this machine."""
        return self.root / container_path.lstrip("/")

    def text(self, value: str) -> str:
        value = _POSTGRES_URL.sub(self._postgres_url, value)
        value = self._address.sub(self._local_address, value)
        value = _LISTEN_PORT.sub(self._local_listen_port, value)
        if self._has_paths:
            value = self._path.sub(lambda m: str(self.local_path(m["path"])), value)
        return value

    def argv(self, argv: Sequence[str]) -> list[str]:
        """A command line: each argument's text, and ``--port N`` given as two."""
        local = [self.text(arg) for arg in argv]
        for index in range(1, len(local)):
            port = local[index]
            if local[index - 1] == "--port" and port.isdigit() and int(port) in self.own_ports:
                local[index] = str(self.own_ports[int(port)])
        return local

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        local = {key: self.text(value) for key, value in env.items()}
        for key, value in env.items():
            if key.upper().endswith("PORT") and value.isdigit() and int(value) in self.own_ports:
                local[key] = str(self.own_ports[int(value)])
        return local

    def _postgres_url(self, match: re.Match[str]) -> str:
        target = self.postgres
        if target is None or match["host"] != target.host:
            return match[0]
        return (
            f"{match['scheme']}{target.user}@127.0.0.1:{target.local_port}/"
            f"{target.database_prefix}{match['database']}"
        )

    def _local_address(self, match: re.Match[str]) -> str:
        local = self.addresses.get((match["host"], int(match["port"])))
        return match[0] if local is None else f"127.0.0.1:{local}"

    def _local_listen_port(self, match: re.Match[str]) -> str:
        local = self.own_ports.get(int(match["port"]))
        return match[0] if local is None else f"{match['lead']}{local}"
