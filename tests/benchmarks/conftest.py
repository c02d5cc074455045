"""Micro benchmarks run only when benchmarking is switched on.

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
        if "tests/benchmarks" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)
