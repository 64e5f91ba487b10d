"""What a deployment gives a container, independent of how it is written down (a compose
file, Kubernetes manifests): the command, the environment, the files mounted into it, the
ports it listens on and how its health is checked. Readers of deployment files produce
these; :mod:`tests.deploy.local_run` runs them as local processes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

EVPARK_IMAGE_ENTRYPOINT = ("evpark",)


@dataclass(frozen=True)
class HealthCheck:
    """Exactly one of: ``command``, run inside the container (exit 0: healthy; compose's
    ``test: ["CMD", ...]``, a Kubernetes exec probe); ``url``, an HTTP GET answered 200
    (a Kubernetes httpGet probe, written ``http://localhost:<container port>/path``)."""

    command: tuple[str, ...] = ()
    url: str = ""

    def __post_init__(self) -> None:
        if bool(self.command) == bool(self.url):
            raise ValueError("a health check is a command or a URL, not both or neither")


@dataclass(frozen=True)
class ContainerSpec:
    """One container. ``name`` is the host name the others reach it by (the compose
    service, the Kubernetes Service). ``args`` follow ``entrypoint`` (the evpark image's
    is ``evpark``). ``files``: container path -> content (configuration and secrets
    mounted into it); ``volumes``: container directories backed by volumes (empty at
    first). ``ports``: the container ports it listens on. ``one_shot``: it runs to its end
    (a migrations job), it is not a server."""

    name: str
    args: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    health: HealthCheck | None = None
    one_shot: bool = False
    entrypoint: tuple[str, ...] = EVPARK_IMAGE_ENTRYPOINT

    @property
    def argv(self) -> tuple[str, ...]:
        """The whole command line, as the container runs it."""
        return (*self.entrypoint, *self.args)


@dataclass(frozen=True)
class External:
    """A service the deployment brings (PostgreSQL, NATS, Redis, Mosquitto) that a local
    run finds on this machine instead: ``host:port`` in the containers' view is
    ``127.0.0.1:local_port``."""

    host: str
    port: int
    local_port: int
