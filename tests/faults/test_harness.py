"""The harness itself: a child that hangs is killed, says where its threads were, and counts
as a defect (never as the expected kill), so a deadlock fails one test instead of stalling
the run."""
from __future__ import annotations

import sys
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


def test_a_child_killed_while_drawing_a_bar_does_not_hang_the_next(tmp_path, monkeypatch):
    """tqdm's write lock is a multiprocessing lock shared by every process forked after it
    was made: a child SIGKILLed while holding it must not leave it held for the next child
    (each child takes locks of its own)."""
    from tqdm import tqdm

    monkeypatch.setattr(harness, "HANG_SECONDS", 20.0)
    shared = type(tqdm.get_lock()).mp_lock  # made before the forks, as in a pytest worker

    def holds_the_bar_lock() -> int:
        with tqdm.get_lock():
            time.sleep(3600)
        return 0

    def draws_a_bar() -> int:
        for _ in tqdm(range(3), file=sys.stderr):
            pass
        return 0

    first = harness.in_child(holds_the_bar_lock, None, tmp_path / "first.log", kill_after=1.0)
    assert first.killed
    second = harness.in_child(draws_a_bar, None, tmp_path / "second.log")
    assert second.code == 0, second.err
    assert shared.acquire(timeout=5)  # this process's lock was never the child's to hold
    shared.release()
