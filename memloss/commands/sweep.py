"""``memloss sweep SUITE|GRID.toml --out DIR [--seeds N] [--jobs N] [--launcher local|ray|submitit]``."""
from __future__ import annotations

import argparse
import logging
import shlex

__all__ = ["add_parser"]

log = logging.getLogger(__name__)


def _run(args: argparse.Namespace) -> int:
    from memloss.sweep import (LaunchOptions, all_suites, default_threads, parse_seeds, run_sweep,
                               spec_runs)

    if args.list_suites:
        for name, suite in all_suites().items():
            print(f"{name:<26} {suite.describe()}")
        return 0
    if not args.spec:
        raise ValueError("name a suite (memloss sweep --list-suites) or a grid file, SPEC.toml")
    from memloss.core import bounds

    local = args.launcher == "local"  # a cluster's nodes may have more cores than this one
    if local and args.threads is not None and args.threads > bounds.usable_cpus():
        raise ValueError(f"--threads {args.threads} exceeds the {bounds.usable_cpus()} core(s) "
                         f"this process may use; give at most --threads {bounds.usable_cpus()}")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    runs = spec_runs(args.spec, seeds=seeds, sets=args.set)
    if args.dry_run:
        from memloss.sweep.run import execution_sets, resolve_runs

        # what the real sweep checks before it runs anything, with what its workers add
        resolve_runs(runs, execution_sets(args.threads or default_threads(args.jobs)))
        root = args.out or "DIR"
        for run in runs:
            print(f"{run.name}: {shlex.join(run.argv(f'{root}/{run.name}'))}")
        return 0
    if not args.out:
        raise ValueError("--out DIR is required: the directory the sweep's runs are written to")
    for name in ("jobs", "threads", "time", "gpus", "cpus"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "gpus" else 1):
            raise ValueError(f"--{name} must be at least {0 if name == 'gpus' else 1}, got {value}")
    options = LaunchOptions(jobs=args.jobs, threads=args.threads or default_threads(args.jobs),
                            address=args.address, partition=args.partition, time_min=args.time,
                            gpus=args.gpus, cpus=args.cpus, mem_gb=args.mem_gb,
                            cluster=args.cluster, wait=not args.no_wait)
    outcome = run_sweep(runs, args.out, spec=str(args.spec), launcher=args.launcher,
                        options=options, retry_failed=args.retry_failed, progress=args.progress)
    print(outcome.summary())
    if outcome.failed or outcome.skipped_failed:
        print(f"errors: {args.out}/.sweep/errors/NAME.json; logs: {args.out}/.sweep/logs/NAME.log")
        return 1
    if outcome.stopped:  # checkpoints kept: EX_TEMPFAIL, run the sweep again to resume them
        return 75
    return 0


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser(
        "sweep", help="run a suite or a grid of runs (local pool, Ray or SLURM); safe to rerun",
        description="Run every run of SPEC into DIR/NAME: finished runs are skipped, interrupted "
                    "ones resume exactly, failed ones are recorded (DIR/.sweep/errors) and "
                    "retried with --retry-failed. SPEC: a suite (--list-suites) or a TOML grid.")
    p.add_argument("spec", nargs="?", metavar="SPEC", help="suite name or grid file (.toml)")
    p.add_argument("--out", metavar="DIR", help="sweep directory (one run directory per run)")
    p.add_argument("--seeds", help="a count (3 = seeds 0,1,2) or a list (0,5,7); suites default "
                                   "to 3 seeds, grids to their seed key or 0")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an option for every run, as in memloss train (repeatable)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    p.add_argument("--threads", type=int,
                   help="torch threads per run (default: the usable cores divided by --jobs)")
    p.add_argument("--launcher", default="local", choices=("local", "ray", "submitit"),
                   help="local process pool (default), Ray, or submitit (SLURM job arrays)")
    p.add_argument("--address", help="ray: an existing cluster (auto, or ray://HOST:10001); "
                                     "without it a local Ray is started for the sweep")
    p.add_argument("--partition", help="submitit: the SLURM partition")
    p.add_argument("--time", type=int, default=60, metavar="MINUTES",
                   help="submitit: time limit of each run's job (default 60); a job that hits "
                        "it is requeued and resumes")
    p.add_argument("--gpus", type=int, default=0, help="ray/submitit: GPUs per run (default 0)")
    p.add_argument("--cpus", type=int, help="submitit: CPUs per job (default --threads)")
    p.add_argument("--mem-gb", type=float, help="submitit: memory per job in GB")
    p.add_argument("--cluster", choices=("slurm", "local", "debug"),
                   help="submitit: the executor (default: slurm where sbatch exists, else local)")
    p.add_argument("--no-wait", action="store_true",
                   help="submitit: submit the jobs and return (rerun the sweep to see where it is)")
    p.add_argument("--retry-failed", action="store_true", help="retry runs that failed before")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their commands")
    p.add_argument("--list-suites", action="store_true", help="list the named suites")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: on a terminal)")
    p.set_defaults(func=_run)
