"""The harness itself: a child that hangs is killed, says where its threads were, and counts
as a defect (never as the expected kill), so a deadlock fails one test instead of stalling
the run."""
from __future__ import annotations

import time

from . import harness
from .outcomes import judge_error


def test_a_hung_child_is_killed_with_its_stacks(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "HANG_SECONDS", 2.0)

    def sleeps_forever() -> int:
        time.sleep(3600)
        return 0

    got = harness.in_child(sleeps_forever, None, tmp_path / "ops.log")
    assert got.code == harness.HUNG and not got.killed
    assert "hung" in got.err and "sleeps_forever" in got.err  # faulthandler's stack
    assert judge_error(got.code, got.err).category == "traceback"
