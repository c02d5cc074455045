"""Micro benchmarks (tests using the ``benchmark`` fixture) run only when benchmarking is on.

The default pytest options hold ``--benchmark-disable``; these tests are skipped then, so
the normal run stays fast. Run them with::

    .venv/bin/python -m pytest tests/benchmarks --benchmark-enable --benchmark-only
"""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    enabled = config.getoption("benchmark_enable", False) or not config.getoption(
        "benchmark_disable", False)
    if enabled:
        return
    skip = pytest.mark.skip(reason="benchmarks are disabled; add --benchmark-enable")
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)
