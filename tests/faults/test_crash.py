"""Kills and full disks at every write step of a checkpoint, at random operations and at
random times: the committed checkpoint survives and the run continues bit for bit.

The default run strikes every file operation of one checkpoint commit (the second: it has
a predecessor to keep and to remove) plus a few random points; ``-m slow`` strikes every
operation of the whole run and many random points (``tools/fault_campaign.py`` runs that
and prints the table)."""
from __future__ import annotations

import pytest

from .crash import (enospc_case, full_disk_case, kill_case, random_kill_case,
                    timed_kill_case)
from .harness import WRITE_OPS


def _check(outcomes):
    bad = [(what, o) for what, o in outcomes if not o.good]
    assert not bad, "\n".join(f"{what}: {o.category}: {o.detail}" for what, o in bad)


def test_a_commit_has_the_expected_write_steps(ref):
    kinds = [op["op"] for op in ref.commit_ops(2)]
    # temp folder, weights, state, best (hard link), the folder's manifest, rename, manifest
    assert kinds.count("rename") == 1 and "link" in kinds and "save_file" in kinds
    assert [op["name"] for op in ref.commit_ops(2) if op["op"] == "replace"][-1] == \
        "checkpoint.json"


def test_sigkill_at_every_write_step_of_a_checkpoint(ref, tmp_path):
    ops = ref.commit_ops(2)
    outcomes = [(f"kill at op {op['i']} {op['op']} {op['name']}",
                 kill_case(tmp_path / f"k{op['i']}", ref, op["i"])) for op in ops]
    outcomes += [(f"torn write at op {op['i']} {op['name']}",
                  kill_case(tmp_path / f"t{op['i']}", ref, op["i"], torn=True))
                 for op in ops if op["op"] == "fsync"]
    _check(outcomes)


def test_enospc_at_every_write_step_of_a_checkpoint(ref, tmp_path):
    ops = [op for op in ref.commit_ops(2) if op["op"] in WRITE_OPS]
    _check([(f"ENOSPC at op {op['i']} {op['op']} {op['name']}",
             enospc_case(tmp_path / f"e{op['i']}", ref, op["i"])) for op in ops])


def test_sigkill_at_random_points(ref, tmp_path):
    _check([(f"random op, seed {s}", random_kill_case(tmp_path / f"r{s}", ref, s))
            for s in range(3)]
           + [(f"random time, seed {s}", timed_kill_case(tmp_path / f"t{s}", ref, s))
              for s in range(3)])


def test_small_disk_filling_up(ref, tmp_path):
    outcomes = [(f"{kib} KiB tmpfs", full_disk_case(tmp_path / f"d{kib}", ref, kib))
                for kib in (8, 20, 40, 56)]
    if all(o is None for _, o in outcomes):
        pytest.skip("cannot mount a tmpfs here (needs root); ENOSPC is injected instead above")
    _check(outcomes)


def test_ctrl_c_during_a_checkpoint_write_completes_it_then_exits_130(ref, tmp_path):
    """SIGINT arriving between the checkpoint folder's rename and the manifest's: the
    checkpoint is committed first, then the command stops with exit 130 and one line."""
    from memloss.core.runfiles import read_checkpoint

    from .crash import _after
    from .harness import Plan, in_child, start
    from .outcomes import judge_error

    ops = ref.commit_ops(2)
    rename = next(op["i"] for op in ops if op["op"] == "rename")
    run = tmp_path / "run"
    first = in_child(start(run), Plan(interrupt_at=rename), tmp_path / "int.log")
    assert first.code == 130, first.err
    assert judge_error(first.code, first.err, "interrupted; the last complete checkpoint "
                                              "\\(step 2\\)").category == "clear", first.err
    assert read_checkpoint(run).step == 2  # the in-flight checkpoint was completed
    assert _after(run, ref, len(first.ops) + 1, tmp_path, first).category == "ok"


@pytest.mark.slow
def test_sigkill_at_every_operation_of_a_run(ref, tmp_path):
    outcomes = [(f"kill at op {op['i']} {op['op']} {op['name']}",
                 kill_case(tmp_path / "k", ref, op["i"])) for op in ref.ops]
    outcomes += [(f"torn write at op {op['i']} {op['name']}",
                  kill_case(tmp_path / "t", ref, op["i"], torn=True))
                 for op in ref.ops if op["op"] == "fsync"]
    _check(outcomes)


@pytest.mark.slow
def test_enospc_at_every_write_of_a_run(ref, tmp_path):
    _check([(f"ENOSPC at op {op['i']} {op['op']} {op['name']}",
             enospc_case(tmp_path / "e", ref, op["i"])) for op in ref.ops
            if op["op"] in WRITE_OPS])


@pytest.mark.slow
def test_sigkill_at_many_random_points(ref, tmp_path):
    _check([(f"random time, seed {s}", timed_kill_case(tmp_path / "t", ref, s))
            for s in range(100, 130)])
