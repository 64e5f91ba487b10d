"""The whole suite's order: files with a ``slow`` test first.

On several workers (``pytest -n``, as ``.ci/check`` runs the suite) each file goes whole to
one worker in this order (``--dist loadfile --no-loadscope-reorder``): the long scenarios
start at once and overlap the many short tests, instead of starting last and keeping one
worker busy while the others idle. Serially the order changes nothing."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: files stay whole
