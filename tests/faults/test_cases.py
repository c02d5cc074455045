"""Every bad-input, run-file and concurrency case of the robustness table ends in a clear
one-line error or is handled correctly: no traceback, no silent acceptance, no lost data."""
from __future__ import annotations

import pytest

from .cases import CASES


@pytest.mark.parametrize("entry", [pytest.param(e, marks=[pytest.mark.slow] if e.slow else [])
                                   for e in CASES], ids=[f"{e.group}: {e.name}" for e in CASES])
def test_case(entry, tmp_path):
    outcome = entry.run(tmp_path)
    assert outcome.good, f"{outcome.category}: {outcome.detail}"
    assert "unexpected wording" not in outcome.detail, outcome.detail
