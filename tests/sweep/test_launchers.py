"""Sweeps for real at tiny size: the local pool (rerun, failure, kill and resume), Ray and
submitit's local executor giving the same runs as the pool."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from memloss.core.runfiles import read_checkpoint, read_json
from memloss.runs import source_commit
from memloss.sweep import LaunchOptions, grid_runs, run_sweep

TINY = {"hidden_size": 8, "epochs": 1, "optimizer": "adam", "lr": 0.01, "batch_size": 32,
        "eval_batch_size": 64, "task": {"length": 8, "train_size": 96, "valid_size": 16,
                                        "test_size": 16}}
GRID = {"task": "temporal-order", "scheme": ["semeniuta:p=0.25", "moon:p=0.25,sampling=sequence"],
        "seed": [0, 1], "set": TINY}
ONE = LaunchOptions(jobs=2, threads=1)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(run).weights()


def _same_runs(a: Path, b: Path, names: list[str]) -> None:
    for name in names:
        wa, wb = _weights(a / name), _weights(b / name)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name
        assert read_json(a / name / "final.json") == read_json(b / name / "final.json"), name


@pytest.fixture(scope="module")
def pool_sweep(tmp_path_factory) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("pool")
    runs = grid_runs(GRID)
    outcome = run_sweep(runs, out, options=ONE, progress=False)
    assert outcome.ok and sorted(outcome.done) == sorted(r.name for r in runs)
    return out, [r.name for r in runs]


def test_the_pool_runs_every_run_and_a_second_sweep_trains_nothing(pool_sweep):
    out, names = pool_sweep
    assert len(names) == 4
    for name in names:
        config = read_json(out / name / "config.json")
        assert config["train"]["threads"] == 1 and config["command"][:2] == ["memloss", "train"]
        assert "--resume-or-start" in config["command"]
    stamps = {n: (out / n / "final.json").stat().st_mtime_ns for n in names}
    again = run_sweep(grid_runs(GRID), out, options=ONE, progress=False)
    assert again.ok and sorted(again.already) == sorted(names) and again.done == []
    assert {n: (out / n / "final.json").stat().st_mtime_ns for n in names} == stamps
    manifest = read_json(out / ".sweep" / "sweep.json")
    assert [r["name"] for r in manifest["runs"]] == [r.name for r in grid_runs(GRID)]
    assert len((out / ".sweep" / "commands.txt").read_text().splitlines()) == 4


def test_a_sweep_of_another_setup_in_the_same_directory_is_refused(pool_sweep):
    out, _ = pool_sweep
    changed = {**GRID, "set": {**TINY, "lr": 0.02}}
    with pytest.raises(ValueError, match="lr differ"):
        run_sweep(grid_runs(changed), out, options=ONE, progress=False)


def test_a_failure_is_recorded_and_retried_only_when_asked(tmp_path):
    # lr=1e30 makes the adding task's loss non-finite: that run fails, the other finishes
    grid = {"task": "adding", "seed": 0,
            "set": {"hidden_size": 8, "epochs": 3, "batch_size": 8, "lr": [0.01, 1e30],
                    "task": {"length": 6, "train_size": 256, "valid_size": 8, "test_size": 8}}}
    runs = grid_runs(grid)
    assert [r.name for r in runs] == ["lr-0.01_seed-0", "lr-1e30_seed-0"]
    first = run_sweep(runs, tmp_path, options=ONE, progress=False)
    bad = ["lr-1e30_seed-0"]
    assert list(first.failed) == bad and len(first.done) == 1
    error = read_json(tmp_path / ".sweep" / "errors" / f"{bad[0]}.json")
    assert "NonFiniteError" in error["error"] and "Traceback" in error["traceback"]
    assert error["commit"] == source_commit()  # a run that kept nothing still has its commit
    second = run_sweep(runs, tmp_path, options=ONE, progress=False)
    assert list(second.skipped_failed) == bad and second.done == [] and not second.ok
    third = run_sweep(runs, tmp_path, options=ONE, retry_failed=True, progress=False)
    assert list(third.failed) == bad  # retried (and fails again, deterministically)


def _wait_for_checkpoint(proc: subprocess.Popen, state: Path, step: int) -> None:
    """Until the run's checkpoint manifest ``state`` is at ``step`` or later (5 minutes at
    most), the sweep ``proc`` still running."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if state.exists() and read_json(state)["step"] >= step:
            return
        assert proc.poll() is None, "the sweep ended before it could be stopped"
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint at step {step} in 5 minutes")


def test_killing_a_sweep_mid_run_then_sweeping_again_resumes_bit_for_bit(tmp_path):
    long = {**TINY, "epochs": None, "max_steps": 1500, "eval_every": 10}
    grid = {"task": "temporal-order", "scheme": "semeniuta:p=0.25,sampling=step", "seed": 0,
            "set": long}
    spec = tmp_path / "grid.toml"
    spec.write_text(_toml(grid))
    cut = tmp_path / "cut"
    name = grid_runs(grid)[0].name
    state = cut / name / "checkpoint.json"  # the manifest: step of the last checkpoint
    proc = subprocess.Popen([sys.executable, "-m", "memloss", "sweep", str(spec), "--out", str(cut),
                             "--jobs", "1", "--threads", "1", "--no-progress"],
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_for_checkpoint(proc, state, 30)
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, as a preempted job
    finally:
        proc.wait(timeout=60)
    killed_at = read_json(state)["step"]
    assert 30 <= killed_at < 1500 and not (cut / name / "final.json").exists()
    resumed = run_sweep(grid_runs(grid), cut, options=LaunchOptions(jobs=1, threads=1),
                        progress=False)
    assert resumed.done == [name]
    assert read_json(cut / name / "config.json")["resumed"][0]["step"] >= killed_at
    straight = tmp_path / "straight"
    run_sweep(grid_runs(grid), straight, options=LaunchOptions(jobs=2, threads=1), progress=False)
    _same_runs(cut, straight, [name])


def test_sigterm_to_the_sweep_alone_stops_its_workers_and_keeps_their_checkpoints(tmp_path):
    """A scheduler's SIGTERM to the sweep process (not its group) reaches the runs: each
    stops at a safe point as `memloss train` does, no worker outlives the sweep, the queued
    run never starts, and the sweep exits 143."""
    from memloss.core.runfiles import busy, lock_owner
    from memloss.training.resume import run_state

    long = {**TINY, "epochs": None, "max_steps": 3000, "eval_every": 10}
    grid = {"task": "temporal-order", "scheme": "semeniuta:p=0.25,sampling=step", "seed": [0, 1],
            "set": long}
    spec = tmp_path / "grid.toml"
    spec.write_text(_toml(grid))
    out = tmp_path / "out"
    first, queued = (r.name for r in grid_runs(grid))
    state = out / first / "checkpoint.json"
    proc = subprocess.Popen([sys.executable, "-m", "memloss", "sweep", str(spec), "--out", str(out),
                             "--jobs", "1", "--threads", "1", "--no-progress"],
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_checkpoint(proc, state, 30)
        worker = lock_owner(out / first)["pid"]
        assert worker != proc.pid
        proc.send_signal(signal.SIGTERM)  # the sweep alone
        err, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert f"run {first} stopped: stopped by SIGTERM" in err, err[-2000:]
    assert f"run {queued} stopped: the sweep was stopped before" in err, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)  # the worker ended with the sweep
    assert run_state(out / first) == "interrupted" and read_json(state)["step"] >= 30
    assert not (out / queued).exists()  # never started
    assert busy(out / first) is None  # a rerun resumes it (as after a kill: the test above)


def _toml(grid: dict) -> str:
    lines = []
    for k in ("task", "scheme", "seed"):
        lines.append(f"{k} = {json.dumps(grid[k])}")
    lines.append("[set]")
    for k, v in grid["set"].items():
        if isinstance(v, dict):
            lines += [f"{k}.{pk} = {json.dumps(pv)}" for pk, pv in v.items()]
        else:  # TOML has no null: an option's "null" text means None, as in --set
            lines.append(f"{k} = {json.dumps('null' if v is None else v)}")
    return "\n".join(lines) + "\n"


def test_ray_gives_the_runs_the_pool_gives(pool_sweep, tmp_path):
    pytest.importorskip("ray")  # a dev dependency: installed by `make test`
    out, names = pool_sweep
    outcome = run_sweep(grid_runs(GRID), tmp_path, launcher="ray", options=ONE, progress=False)
    assert outcome.ok and sorted(outcome.done) == sorted(names)
    _same_runs(out, tmp_path, names)


def test_submitit_local_executor_gives_the_runs_the_pool_gives(pool_sweep, tmp_path):
    pytest.importorskip("submitit")  # a dev dependency: installed by `make test`
    out, names = pool_sweep
    outcome = run_sweep(grid_runs(GRID), tmp_path, launcher="submitit",
                        options=LaunchOptions(jobs=2, threads=1, cluster="local", time_min=10),
                        progress=False)
    assert outcome.ok and sorted(outcome.done) == sorted(names)
    _same_runs(out, tmp_path, names)
    assert list((tmp_path / ".sweep" / "submitit").iterdir())  # submitit's own job folders


def _grid_toml(path: Path) -> Path:
    """GRID as a grid file."""
    def value(v: object) -> str:
        return json.dumps(v)  # numbers, strings and lists of them read the same in TOML
    lines = [f"{k} = {value(GRID[k])}" for k in ("task", "scheme", "seed")]
    lines += ["[set]", *(f"{k} = {value(v)}" for k, v in TINY.items() if k != "task")]
    lines += ["[set.task]", *(f"{k} = {value(v)}" for k, v in TINY["task"].items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_cli_prints_the_sweeps_summary_once(pool_sweep, tmp_path, capsys, caplog):
    from memloss.cli import main

    out, names = pool_sweep
    spec = _grid_toml(tmp_path / "grid.toml")
    assert main(["sweep", str(spec), "--out", str(out), "--jobs", "2", "--threads", "1",
                 "--no-progress"]) == 0
    shown = capsys.readouterr()
    everything = shown.out + shown.err + caplog.text
    summary = "4 runs: 4 finished (0 trained now, 4 already)"
    assert shown.out.count(summary) == 1 and everything.count(summary) == 1


@pytest.mark.slow
def test_the_progress_counts_left_down_and_adds_up(tmp_path, monkeypatch):
    """The local pool's poll order (results, then the count executing): ``left`` never rises
    and every count adds up to the sweep's runs."""
    import memloss.sweep.run as sweep_run

    seen: list[dict[str, int]] = []

    class Recording(sweep_run._Progress):
        def _show(self, refresh: bool = True) -> None:
            seen.append(self.counts())
            super()._show(refresh)

    monkeypatch.setattr(sweep_run, "_Progress", Recording)
    runs = grid_runs({**GRID, "scheme": "semeniuta:p=0.25", "seed": [0, 1, 2]})
    outcome = run_sweep(runs, tmp_path, options=LaunchOptions(jobs=2, threads=1), progress=False)
    assert outcome.ok and len(outcome.done) == 3
    assert all(sum(c[k] for k in ("done", "running", "failed", "busy", "stopped", "left")) == 3
               for c in seen)
    lefts = [c["left"] for c in seen]
    assert lefts[0] == 3 and lefts[-1] == 0
    assert all(a >= b for a, b in zip(lefts, lefts[1:])), lefts
    assert max(c["running"] for c in seen) <= 2  # --jobs 2
    # while runs remain, one is executing: a bar that shows none running with runs left has
    # lost count of one (it did when the count came before the results)
    assert all(c["running"] > 0 for c in seen[1:] if c["left"] or c["done"] < 3), seen
    assert seen[-1]["done"] == 3


def test_progress_counts_runs_that_ended_without_finishing(tmp_path):
    import memloss.sweep.run as sweep_run

    outcome = sweep_run.SweepOutcome(["a", "b", "c", "d"], already=["a"], skipped_failed={"b": "x"})
    bar = sweep_run._Progress(outcome, 4, disable=True)
    assert bar.counts() == {"done": 1, "failed": 1, "busy": 0, "stopped": 0, "running": 0, "left": 2}
    bar.running(2)
    bar.finished({"name": "c", "status": "stopped", "error": "SIGTERM"})
    bar.running(1)
    assert bar.counts() == {"done": 1, "failed": 1, "busy": 0, "stopped": 1, "running": 1, "left": 0}
    bar.finished({"name": "d", "status": "busy", "error": "locked"})
    bar.running(0)
    assert bar.counts()["left"] == 0 and bar.counts()["busy"] == 1
    bar.close()
