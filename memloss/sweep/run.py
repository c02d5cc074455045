"""Run a sweep: check every run, skip what is finished, launch the rest, show progress.

:func:`run_sweep` is safe to call again on the same directory: finished runs are left as they
are, interrupted ones resume exactly (:func:`memloss.training.resume_or_start`), failed ones
(``DIR/.sweep/errors/NAME.json``) are retried only with ``retry_failed``. Every run's config
is resolved and checked before anything starts, and a directory that holds a finished run of
another setup stops the sweep before it starts.
"""
from __future__ import annotations

import json
import logging
import os
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from memloss.core import bounds
from memloss.core.atomic import atomic_write_text

from .job import SWEEP_META, error_path, read_error
from .launchers import LAUNCHERS, LaunchOptions
from .spec import RunSpec

__all__ = ["run_sweep", "SweepOutcome", "plan", "resolve_runs", "execution_sets", "usable_cpus", "default_threads"]

log = logging.getLogger(__name__)


def usable_cpus() -> int:
    """The CPUs this process may run on (:func:`memloss.core.bounds.usable_cpus`)."""
    return bounds.usable_cpus()


def default_threads(jobs: int) -> int:
    """Each of ``jobs`` parallel runs gets its share of the cores (at least one)."""
    return max(1, usable_cpus() // jobs)


@dataclass
class SweepOutcome:
    """What a sweep did: run names by what happened to them."""

    runs: list[str]
    already: list[str] = field(default_factory=list)      # finished before this sweep
    done: list[str] = field(default_factory=list)         # trained or resumed now
    failed: dict[str, str] = field(default_factory=dict)  # name -> error
    skipped_failed: dict[str, str] = field(default_factory=dict)  # failed before, not retried
    busy: dict[str, str] = field(default_factory=dict)    # another process was training it
    stopped: dict[str, str] = field(default_factory=dict)  # SIGTERM & co.: resumes on a rerun

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped_failed and not self.stopped

    def summary(self) -> str:
        parts = [f"{len(self.runs)} runs: {len(self.already) + len(self.done)} finished "
                 f"({len(self.done)} trained now, {len(self.already)} already)"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed ({', '.join(sorted(self.failed))})")
        if self.busy:
            parts.append(f"{len(self.busy)} busy, being trained by another process "
                         f"({', '.join(sorted(self.busy))}; not failures: collect them once "
                         "it has finished)")
        if self.stopped:
            parts.append(f"{len(self.stopped)} stopped by a signal ({', '.join(sorted(self.stopped))}"
                         "; checkpoints kept: run the sweep again to resume them)")
        if self.skipped_failed:
            parts.append(f"{len(self.skipped_failed)} failed earlier and not retried "
                         f"({', '.join(sorted(self.skipped_failed))}; --retry-failed retries them)")
        return "; ".join(parts)


def execution_sets(threads: int) -> tuple[str, ...]:
    """The ``--set`` items of how a sweep executes, which every run gets last."""
    return (f"threads={threads}", "progress=false")


def resolve_runs(runs: Sequence[RunSpec], extra: Sequence[str] = ()) -> list[Any]:
    """Every run's TrainConfig, resolved with ``extra`` (:func:`execution_sets`) and checked
    as the worker will (options, task parameters, the net, the bounds of
    :mod:`memloss.core.bounds`), before anything runs; ``memloss sweep --dry-run`` checks the
    same. The first problem is one line naming the run."""
    from memloss.resolve import resolve_config

    bounds.check_runs("the sweep", len(runs))
    names = [r.name for r in runs]
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"the sweep names two runs {n!r}; give them distinct values")
        seen.add(n)
    configs = []
    for run in runs:
        try:
            configs.append(resolve_config(run.target, run.scheme, [*run.sets, *extra]))
        except ValueError as e:
            raise ValueError(f"run {run.name}: {e}") from None
    return configs


def plan(runs: Sequence[RunSpec], sweep_dir: Path, retry_failed: bool = False,
         extra: Sequence[str] = ()) -> tuple[list[RunSpec], list[str], dict[str, str]]:
    """``(to launch, finished, failed and not retried)``. Every run's config is resolved
    first, so a bad spec fails before anything runs."""
    from memloss.training.resume import differences, run_state

    todo, finished, failed = [], [], {}
    for run, config in zip(runs, resolve_runs(runs, extra)):
        out = sweep_dir / run.name
        state = run_state(out)
        if state == "finished":
            diff = differences(config, out)
            if diff:
                raise ValueError(f"{out} holds a finished run whose {', '.join(diff)} differ from "
                                 "this sweep's; give the sweep another --out (or remove the run)")
            finished.append(run.name)
            continue
        error = read_error(sweep_dir, run.name)
        if error is not None and not retry_failed:
            failed[run.name] = str(error.get("error"))
            continue
        todo.append(run)
    return todo, finished, failed


class _Progress:
    """A tqdm bar over runs: done / running / failed / left, with tqdm's estimate. The
    launcher reports each result (:meth:`finished`) before the count of runs executing after
    it (:meth:`running`), so ``left`` only ever falls."""

    def __init__(self, outcome: SweepOutcome, total: int, disable: bool | None):
        self.outcome = outcome
        self.total = total
        self.now_running = 0
        initial = len(outcome.already) + len(outcome.skipped_failed)
        self.bar = tqdm(total=total, initial=initial, unit="run", desc="sweep", smoothing=0,
                        disable=disable, dynamic_ncols=True)
        self._show()

    def counts(self) -> dict[str, int]:
        """``done``, ``running``, ``failed`` (now or before, not retried), ``busy`` and
        ``stopped`` (ended without finishing) and ``left`` (not started yet); they add up to
        the sweep's runs."""
        o = self.outcome
        counts = {"done": len(o.already) + len(o.done),
                  "failed": len(o.failed) + len(o.skipped_failed),
                  "busy": len(o.busy), "stopped": len(o.stopped)}
        ended = sum(counts.values())
        counts["running"] = min(self.now_running, self.total - ended)
        counts["left"] = self.total - ended - counts["running"]
        return counts

    def _show(self, refresh: bool = True) -> None:
        c = self.counts()
        shown = [f"{k}={c[k]}" for k in ("done", "running", "failed")]
        shown += [f"{k}={c[k]}" for k in ("busy", "stopped") if c[k]]
        self.bar.set_postfix_str(" ".join([*shown, f"left={c['left']}"]), refresh=refresh)

    def running(self, n: int) -> None:
        if n != self.now_running:
            self.now_running = n
            self._show()

    def finished(self, result: dict[str, Any]) -> None:
        name = result["name"]
        if result["status"] == "done":
            self.outcome.done.append(name)
        elif result["status"] in ("busy", "stopped"):
            getattr(self.outcome, result["status"])[name] = str(result.get("error"))
            self.bar.write(f"run {name} {result['status']}: {result.get('error')}")
        else:
            self.outcome.failed[name] = str(result.get("error"))
            self.bar.write(f"run {name} failed: {result.get('error')}")
        self.now_running = max(0, self.now_running - 1)
        self._show(refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _write_manifest(sweep_dir: Path, spec: str, runs: Sequence[RunSpec], launcher: str,
                    options: LaunchOptions) -> None:
    meta = sweep_dir / SWEEP_META
    meta.mkdir(parents=True, exist_ok=True)
    record = {"spec": spec, "launcher": launcher, "jobs": options.jobs, "threads": options.threads,
              "extra": list(options.extra), "runs": [r.to_dict() for r in runs]}
    atomic_write_text(meta / "sweep.json", json.dumps(record, indent=2) + "\n")
    # the same runs as plain command lines (e.g. for a hand-written batch script)
    lines = [shlex.join(r.argv(sweep_dir / r.name)) for r in runs]
    atomic_write_text(meta / "commands.txt", "\n".join(lines) + "\n")


def run_sweep(runs: Sequence[RunSpec], sweep_dir: str | os.PathLike, *, spec: str = "",
              launcher: str = "local", options: LaunchOptions = LaunchOptions(),
              retry_failed: bool = False, progress: bool | None = None) -> SweepOutcome:
    """Run ``runs`` into ``sweep_dir`` (one directory per run, named ``run.name``) with the
    launcher named ``launcher`` (:data:`~memloss.sweep.launchers.LAUNCHERS`). ``progress``:
    the bar (None = only on a terminal). Returns what happened (``outcome.summary()`` says it
    in a line; ``memloss sweep`` prints it); failures are recorded, not raised."""
    if not runs:
        raise ValueError("the sweep has no runs")
    start = LAUNCHERS.get(launcher)
    sweep_dir = Path(sweep_dir).resolve()
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise ValueError(f"--out {sweep_dir} is a file; give a directory for the sweep")
    if not options.extra:
        options = replace(options, extra=execution_sets(options.threads))
    todo, finished, failed = plan(runs, sweep_dir, retry_failed, options.extra)
    outcome = SweepOutcome([r.name for r in runs], already=finished, skipped_failed=failed)
    _write_manifest(sweep_dir, spec, runs, launcher, options)
    for run in todo:
        error_path(sweep_dir, run.name).unlink(missing_ok=True)
    log.info("sweep %s: %d runs, %d already finished, %d to run with %s (%d at once, %d threads "
             "each)", sweep_dir, len(runs), len(finished), len(todo), launcher, options.jobs,
             options.threads)
    bar = _Progress(outcome, len(runs), None if progress is None else not progress)
    try:
        if todo:
            start(todo, sweep_dir, options, bar)
    finally:
        bar.close()
    return outcome
