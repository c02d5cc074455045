"""Fixtures of the fault-injection suite: one reference run per session (forked children
share the warmed-up process)."""
from __future__ import annotations

import os
import sys

import pytest

from .crash import Reference, reference


@pytest.fixture(scope="session")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    if sys.platform != "linux" or not hasattr(os, "fork"):
        pytest.skip("the fault-injection harness forks and reads /proc (Linux)")
    return reference(tmp_path_factory.mktemp("reference"))
