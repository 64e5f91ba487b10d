"""Reading a compose file as ``docker compose`` does, far enough for the files in
``deploy/compose/``: variables interpolated from an env file (``${VAR}``,
``${VAR:-default}``, ``${VAR:?error}``, ``$$``), YAML merge keys, and the services of the
evpark image turned into :class:`ContainerSpec`s in start order."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.containers import ContainerSpec, HealthCheck

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)")


class ComposeError(ValueError):
    """What ``docker compose`` would refuse (a required variable unset, a cycle)."""


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines; blank lines and ``#`` comments skipped."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def interpolate(value: Any, variables: Mapping[str, str]) -> Any:
    """Every string in ``value`` (nested lists and mappings too) with its variables."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: _substitute(m, variables), value)
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    return value


def _substitute(match: re.Match[str], variables: Mapping[str, str]) -> str:
    if match[0] == "$$":
        return "$"
    name = match["name"] or match["bare"]
    value = variables.get(name)
    op, arg = match["op"], match["arg"]
    unset = value is None or (value == "" and op is not None and op.startswith(":"))
    if op is not None and op.endswith("?") and unset:
        raise ComposeError(f"{name}: {arg or 'required'}")
    if op is not None and op.endswith("-") and unset:
        return str(arg)
    return value or ""


@dataclass(frozen=True)
class Compose:
    """A compose file after interpolation; ``directory`` is where relative paths start."""

    directory: Path
    document: dict[str, Any]

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        services: dict[str, dict[str, Any]] = self.document["services"]
        return services

    def start_order(self) -> list[str]:
        """Service names, each after what it depends on."""
        ordered: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in path:
                raise ComposeError(f"depends_on cycle: {' -> '.join((*path, name))}")
            if name not in ordered:
                for dependency in self.services[name].get("depends_on", {}):
                    visit(dependency, (*path, name))
                ordered.append(name)

        for name in self.services:
            visit(name, ())
        return ordered

    def completed_before_others(self) -> set[str]:
        """One-shot services: others wait for them with service_completed_successfully."""
        return {
            dependency
            for service in self.services.values()
            for dependency, condition in _depends_on(service).items()
            if condition == "service_completed_successfully"
        }

    def environment(self, name: str, env_files: Mapping[str, Path] | None = None) -> dict[str, str]:
        """``env_file`` entries first, then ``environment`` (list or mapping form).
        ``env_files``: an env_file as written -> the file to read instead (a filled-in
        copy of its example)."""
        service = self.services[name]
        env: dict[str, str] = {}
        for env_file in _as_list(service.get("env_file", [])):
            written = env_file if isinstance(env_file, str) else env_file["path"]
            env.update(read_env_file((env_files or {}).get(written, self.directory / written)))
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        env.update({key: "" if value is None else str(value) for key, value in environment.items()})
        return env

    def spec(self, name: str, env_files: Mapping[str, Path] | None = None) -> ContainerSpec:
        """Service ``name`` (of the evpark image) as a :class:`ContainerSpec`; for
        ``env_files`` see :meth:`environment`."""
        service = self.services[name]
        files: dict[str, str] = {}
        volumes: list[str] = []
        for mount in service.get("volumes", []):
            source, target = str(mount).split(":")[:2]
            if source.startswith((".", "/")):
                files[target] = (self.directory / source).read_text()
            else:
                volumes.append(target)
        ports = {int(str(port).split(":")[-1]) for port in service.get("ports", [])}
        ports |= {int(port) for port in service.get("expose", [])}
        check = service.get("healthcheck", {}).get("test")
        health = None
        if check is not None:
            if check[0] != "CMD":
                raise ComposeError(f"{name}: health checks are written in the CMD form")
            health = HealthCheck(command=tuple(check[1:]))
        return ContainerSpec(
            name=name,
            args=tuple(service.get("command", ())),
            env=self.environment(name, env_files),
            files=files,
            volumes=tuple(volumes),
            ports=tuple(sorted(ports)),
            health=health,
            one_shot=name in self.completed_before_others(),
        )


def read_compose(path: Path, variables: Mapping[str, str]) -> Compose:
    """The compose file at ``path``, interpolated with ``variables`` (the ``--env-file``)."""
    document = yaml.safe_load(path.read_text())
    document = {key: value for key, value in document.items() if not key.startswith("x-")}
    return Compose(path.parent, interpolate(document, variables))


def _depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return dict.fromkeys(depends, "service_started")
    return {name: entry.get("condition", "service_started") for name, entry in depends.items()}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
