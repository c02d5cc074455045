"""Many runs: ``memloss sweep SPEC --out DIR``.

SPEC is a named suite (one per paper table, and a ``-cpu`` variant of each, built from the
presets: :mod:`.suites`) or a grid file in TOML (:mod:`.spec`). Each run is one ``memloss
train ... --resume-or-start`` into ``DIR/NAME``; :func:`run_sweep` checks them all, skips
finished ones and launches the rest with a launcher (:mod:`.launchers`: a local process pool,
Ray, or submitit for SLURM), showing done / running / failed / left.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .job import SWEEP_META, run_job
from .launchers import LAUNCHERS, LaunchOptions
from .run import SweepOutcome, default_threads, run_sweep, usable_cpus
from .spec import RunSpec, grid_runs, load_grid, name_runs, parse_seeds
from .suites import Suite, all_suites, get_suite

__all__ = ["RunSpec", "grid_runs", "load_grid", "name_runs", "parse_seeds", "Suite", "all_suites",
           "get_suite", "run_sweep", "SweepOutcome", "LaunchOptions", "LAUNCHERS", "run_job",
           "SWEEP_META", "spec_runs", "default_threads", "usable_cpus"]


def spec_runs(spec: str | os.PathLike, *, seeds: Sequence[int] | None = None,
              sets: Sequence[str] = ()) -> list[RunSpec]:
    """The runs of SPEC: a grid file (``*.toml``) or a suite name. ``seeds`` default: the
    grid's own ``seed`` key, else 0 for a grid; 0, 1, 2 for a suite."""
    text = str(spec)
    if text.endswith(".toml") or Path(text).is_file():
        return grid_runs(load_grid(text), seeds=seeds, sets=sets)
    return get_suite(text).runs(list(seeds) if seeds is not None else [0, 1, 2], sets)
