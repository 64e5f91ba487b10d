"""The layer rules of docs/architecture.md, read off the imports of every module.

Each rule names what a layer may import of the project; anything else of the project is a
violation (third-party and standard-library imports are not judged here). Lazy imports inside
functions and ``TYPE_CHECKING`` blocks count too: a dependency is a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "contract", "ocpp_handlers", "edge", "central", "sim", "evpark")

EDGE_BASE = ("edge.core", "edge.config", "common")
CENTRAL_SHARED = (
    "central.infra",
    "central.context",
    "central.auth",
    "central.api_types",
    "central.event_routing",
    "central.site_commands",
    "central.reported_times",
    "central.service",
    "central.settings",
    "central.pricing",
    "central.published_rates",
    "central.sync.presence",  # the sites' presence, which sync publishes in the cache for all
    "common",
    "contract",
)

# layer (module prefix, longest match wins) -> what it may import of the project
RULES: dict[str, tuple[str, ...]] = {
    "common": (),
    "contract": ("common",),
    "ocpp_handlers": ("edge.core", "common"),
    # the edge, inside out: core <- storage <- services <- adapters <- composition root
    "edge.core": EDGE_BASE,
    "edge.storage": (*EDGE_BASE, "contract"),
    "edge.services": (*EDGE_BASE, "edge.storage", "contract"),
    "edge.sensors": (*EDGE_BASE, "edge.metrics"),
    "edge.ocpp": (*EDGE_BASE, "edge.services", "edge.storage", "edge.metrics", "ocpp_handlers"),
    "edge.api": (*EDGE_BASE, "edge.services", "edge.storage", "edge.ocpp.charger_calls", "edge.ocpp.firmware",
                 "edge.ocpp.server", "edge.ocpp.connection", "edge.power"),
    "edge.ui": (*EDGE_BASE, "edge.services", "edge.storage", "edge.api.limits", "edge.ocpp.connection",
                "edge.api.json_io", "edge.ocpp.charger_calls", "edge.ocpp.firmware", "edge.ocpp.server",
                "edge.power"),
    "edge.uplink": (*EDGE_BASE, "edge.services", "edge.storage", "edge.ocpp.charger_calls", "edge.ocpp.firmware",
                    "edge.ocpp.server", "edge.ocpp.connection", "contract", "edge.power"),
    # load management: the site's sessions in, charging profiles out
    "edge.power": (*EDGE_BASE, "edge.services", "edge.storage", "edge.ocpp.charger_calls",
                   "edge.ocpp.server", "edge.ocpp.connection", "edge.metrics", "contract"),
    "edge.admin": (*EDGE_BASE, "edge.services", "edge.storage", "edge.ocpp.admission"),
    "edge": ("edge", "ocpp_handlers", "common", "contract"),  # daemon, cli, config, logs
    # central: infrastructure below the services; a service never imports another
    "central.infra": ("central.infra", "common", "contract"),
    "central.parking": ("central.parking", *CENTRAL_SHARED),
    "central.charging": ("central.charging", *CENTRAL_SHARED),
    "central.notification": ("central.notification", *CENTRAL_SHARED),
    "central.analytics": ("central.analytics", *CENTRAL_SHARED),
    "central.sync": ("central.sync", *CENTRAL_SHARED),
    "central.gateway": ("central.gateway", "central.settings", *CENTRAL_SHARED),
    "central": ("central", "common", "contract"),  # composition root, settings, shared rules
    # the simulator is hardware: it reaches the edge and central over the network only
    "sim": ("sim", "common"),
    "evpark": PACKAGES,  # the product CLI puts the parts together
}  # fmt: skip


def _layer(module: str) -> str:
    matches = [key for key in RULES if module == key or module.startswith(key + ".")]
    return max(matches, key=len)


def _allowed(target: str, allowed: tuple[str, ...], own: str) -> bool:
    return any(target == prefix or target.startswith(prefix + ".") for prefix in (*allowed, own))


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _imports(module: str, path: Path) -> Iterator[tuple[int, str]]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if base else alias.name


def _violations() -> list[str]:
    found: list[str] = []
    for module, path in _modules():
        layer = _layer(module)
        for line, target in _imports(module, path):
            if target.split(".")[0] not in PACKAGES:
                continue
            if not _allowed(target, RULES[layer], layer):
                found.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {target}")
    return found


def test_every_import_follows_the_layer_rules() -> None:
    assert _violations() == []


def test_every_module_has_a_layer_and_the_rules_name_real_packages() -> None:
    modules = {module for module, _ in _modules()}
    assert all(_layer(module) in RULES for module in modules)
    for layer, allowed in RULES.items():
        for prefix in (layer, *allowed):
            assert any(m == prefix or m.startswith(prefix + ".") for m in modules), prefix


@pytest.mark.parametrize(
    ("module", "target", "layer_ok"),
    [
        ("edge.core.meter", "edge.storage.sqlite", False),  # core imports no adapter
        ("ocpp_handlers.v16", "edge.services.site", False),  # handlers see the core only
        ("edge.ocpp.server", "ocpp_handlers.v16", True),  # the transport uses the handlers
        ("central.parking.api", "central.charging.store", False),  # services stay apart
        ("central.parking.api", "edge.core.ids", False),  # central never imports the edge
        ("edge.uplink.sync", "central.app", False),  # the edge never imports central
        ("edge.uplink.sync", "contract.sync_api", True),  # they share the contract only
        ("sim.sensors", "edge.sensors.mqtt", False),  # the simulator is outside the site
        ("central.infra.bus", "central.parking.events", False),  # infra imports no service
    ],
)
def test_the_rules_catch_what_they_are_for(module: str, target: str, layer_ok: bool) -> None:
    layer = _layer(module)
    assert _allowed(target, RULES[layer], layer) is layer_ok
