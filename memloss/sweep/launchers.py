"""Where a sweep's runs execute: a local process pool, Ray, or submitit (SLURM job arrays).

Every launcher runs :func:`memloss.sweep.job.run_job` once per run and reports through a
:class:`Monitor` (``started``/``running``/``finished``); the runs write their directories
under the sweep directory, which must be on a file system every worker sees (a cluster's
shared disk). Ray and submitit are optional extras (``pip install memloss[ray]``,
``memloss[slurm]``), imported only when chosen.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from memloss.core.registry import Registry
from memloss.training.signals import Terminated, stop_on_termination

from .job import SWEEP_META, SweepJob, run_job
from .spec import RunSpec

__all__ = ["Monitor", "Launcher", "LAUNCHERS", "local_pool", "ray_tasks", "submitit_jobs",
           "LaunchOptions"]

log = logging.getLogger(__name__)

_POLL_S = 0.5


class Monitor(Protocol):
    """What a launcher tells the sweep: each result as it comes (``finished``), then how many
    runs are executing now (``running``), in that order after every poll."""

    def running(self, n: int) -> None: ...

    def finished(self, result: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class LaunchOptions:
    """How to launch: ``jobs`` runs at once, ``extra`` ``--set`` items every run gets
    (threads, progress), and the cluster options (Ray ``address``; SLURM ``partition``,
    ``time_min``, ``gpus``, ``cpus``, ``mem_gb``, ``slurm_args``; ``cluster`` forces
    submitit's executor: ``slurm``, ``local`` or ``debug``)."""

    jobs: int = 1
    threads: int = 1
    extra: tuple[str, ...] = ()
    address: str | None = None
    partition: str | None = None
    time_min: int = 60
    gpus: int = 0
    cpus: int | None = None
    mem_gb: float | None = None
    cluster: str | None = None
    wait: bool = True


class Launcher(Protocol):
    def __call__(self, runs: Sequence[RunSpec], sweep_dir: Path, options: LaunchOptions,
                 monitor: Monitor) -> None: ...


#: launchers by name (``memloss sweep --launcher NAME``)
LAUNCHERS: Registry[Launcher] = Registry("launcher")


def _failed(run: RunSpec, error: str) -> dict[str, Any]:
    return {"name": run.name, "status": "failed", "action": None, "error": error, "seconds": None}


@LAUNCHERS.register("local", "a pool of --jobs processes on this machine (the default)")
def local_pool(runs: Sequence[RunSpec], sweep_dir: Path, options: LaunchOptions,
              monitor: Monitor) -> None:
    """``jobs`` spawned worker processes. A worker that dies (killed, out of memory) breaks
    the pool: the runs it held are given to a fresh pool once, then recorded as failed.

    A termination signal to the sweep (SIGTERM, SIGUSR1/2: :mod:`memloss.training.signals`)
    goes on to the workers, which stop their runs as ``memloss train`` does (the last complete
    checkpoint kept); runs not started are not started, and the sweep raises
    :class:`~memloss.training.signals.Terminated` once every worker has stopped, so no worker
    outlives it. (Ctrl-C reaches the workers from the terminal itself.)"""
    attempts: dict[str, int] = {}
    queue = list(runs)
    ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads can hang
    while queue:
        broken: list[RunSpec] = []
        stop = ctx.Event()
        with stop_on_termination(), ProcessPoolExecutor(
                max_workers=options.jobs, mp_context=ctx, initializer=_worker_init,
                initargs=(stop,)) as pool:
            futures: dict[Future, RunSpec] = {
                pool.submit(_pool_job, r.to_dict(), str(sweep_dir), options.extra): r
                for r in queue}
            queue = []
            pending = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                    for f in done:  # the results first, then what runs now (see Monitor)
                        run = futures[f]
                        try:
                            monitor.finished(f.result())
                        except BrokenProcessPool:
                            broken.append(run)
                    monitor.running(min(options.jobs, sum(f.running() for f in pending)))
            except Terminated as signalled:
                stop.set()  # a run a worker takes from here on is not started
                _stop_workers(pool, signalled.signum, pending, monitor)
                raise
        for run in broken:
            attempts[run.name] = attempts.get(run.name, 0) + 1
            if attempts[run.name] > 1:
                monitor.finished(_failed(run, "its worker process died twice (killed, e.g. out "
                                              "of memory); see its log"))
            else:
                queue.append(run)
        if queue:
            log.warning("a worker process died; %d runs go to a fresh pool", len(queue))


_STOP: Any = None  # in a worker of local_pool: the sweep's stop event


def _worker_init(stop: Any) -> None:
    global _STOP
    _STOP = stop


def _pool_job(spec: dict[str, Any], sweep_dir: str, extra: tuple[str, ...]) -> dict[str, Any]:
    """:func:`run_job` in a worker of :func:`local_pool`, unless the sweep was stopped."""
    if _STOP is not None and _STOP.is_set():
        return {"name": RunSpec.from_dict(spec).name, "status": "stopped", "action": None,
                "error": "the sweep was stopped before this run started", "seconds": 0.0}
    return run_job(spec, sweep_dir, extra)


def _stop_workers(pool: ProcessPoolExecutor, signum: int, pending: set[Future],
                  monitor: Monitor) -> None:
    """Cancel the runs not started, pass ``signum`` on to every live worker of ``pool`` and
    report the runs they stop (``stopped``) as each ends."""
    started = [f for f in pending if not f.cancel()]
    # the executor's own map of its worker processes (no public API names them)
    workers = [p for p in dict(getattr(pool, "_processes", None) or {}).values() if p.is_alive()]
    log.warning("stopping the sweep: its running runs stop at their next safe point (the last "
                "complete checkpoint is kept; the next `memloss sweep` resumes them) and the "
                "others do not start")
    for p in workers:
        try:
            os.kill(p.pid, signum)
        except ProcessLookupError:
            pass
    for f in started:
        try:
            monitor.finished(f.result())
        except (BrokenProcessPool, CancelledError):
            pass  # an idle worker ends on the signal: it held no run


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"--launcher needs the {module} package: pip install "
                         f"'memloss[{extra}]'") from None


@LAUNCHERS.register("ray", "Ray tasks: an existing cluster (--address) or a local Ray")
def ray_tasks(runs: Sequence[RunSpec], sweep_dir: Path, options: LaunchOptions,
                monitor: Monitor) -> None:
    """One Ray task per run, each reserving ``threads`` CPUs (and ``gpus``). Without
    ``address`` a local Ray with ``jobs x threads`` CPUs is started for the sweep and shut
    down after it; with one (``auto`` or ``ray://host:10001``) the cluster's resources set
    how many run at once. A task whose worker dies is retried by Ray, and resumes."""
    ray = _need("ray", "ray")
    started = False
    if not ray.is_initialized():
        if options.address:
            ray.init(address=options.address, log_to_driver=False)
        else:
            ray.init(num_cpus=options.jobs * options.threads, include_dashboard=False,
                     log_to_driver=False)
            started = True
    try:
        capacity = max(1, int(ray.cluster_resources().get("CPU", 1) // options.threads))
        task = ray.remote(num_cpus=options.threads, num_gpus=options.gpus, max_retries=2)(run_job)
        refs = {task.remote(r.to_dict(), str(sweep_dir), options.extra): r for r in runs}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=_POLL_S)
            for ref in ready:
                try:
                    monitor.finished(ray.get(ref))
                except Exception as e:  # the task itself never raises; this is Ray failing it
                    monitor.finished(_failed(refs[ref], f"Ray: {type(e).__name__}: {e}"))
            monitor.running(min(len(pending), capacity))
    finally:
        if started:
            ray.shutdown()


def _submitit_executor(sweep_dir: Path, options: LaunchOptions) -> Any:
    submitit = _need("submitit", "slurm")
    cluster = options.cluster or ("slurm" if shutil.which("sbatch") else "local")
    ex = submitit.AutoExecutor(folder=sweep_dir / SWEEP_META / "submitit" / "%j", cluster=cluster)
    params: dict[str, Any] = {"timeout_min": options.time_min, "name": f"memloss-{sweep_dir.name}",
                              "cpus_per_task": options.cpus or options.threads,
                              "gpus_per_node": options.gpus, "nodes": 1, "tasks_per_node": 1,
                              "slurm_array_parallelism": options.jobs}
    if options.mem_gb is not None:
        params["mem_gb"] = options.mem_gb
    if options.partition:
        params["slurm_partition"] = options.partition
    ex.update_parameters(**params)
    return ex


@LAUNCHERS.register("submitit", "submitit: SLURM job arrays (--partition, --time, --gpus), "
                    "or local processes where there is no SLURM")
def submitit_jobs(runs: Sequence[RunSpec], sweep_dir: Path, options: LaunchOptions,
                     monitor: Monitor) -> None:
    """One SLURM array job for the sweep (``jobs`` tasks at once), each task one run; a task
    preempted or out of time is requeued and resumes. Without ``sbatch`` on the PATH,
    submitit's local executor runs the same jobs as processes here (``jobs`` at once).
    With ``wait=False`` the jobs are submitted and the command returns."""
    ex = _submitit_executor(sweep_dir, options)
    specs = [r.to_dict() for r in runs]
    by_name = {r.name: r for r in runs}
    fn = SweepJob()
    if ex.cluster != "local":
        jobs = ex.map_array(fn, specs, [str(sweep_dir)] * len(specs), [options.extra] * len(specs))
        log.info("submitted array job %s (%d tasks) to %s", jobs[0].job_id.split("_")[0] if jobs
                 else "-", len(jobs), ex.cluster)
        queue: list[dict] = []
    else:  # the local executor starts every job at once: keep `jobs` in flight
        jobs, queue = [], list(specs)
    if not options.wait:
        for spec in queue:
            jobs.append(ex.submit(fn, spec, str(sweep_dir), options.extra))
        return
    live = list(jobs)
    while live or queue:
        while queue and len(live) < options.jobs:
            live.append(ex.submit(fn, queue.pop(0), str(sweep_dir), options.extra))
        time.sleep(_POLL_S)
        still = []
        for job in live:
            if not job.done():
                still.append(job)
                continue
            try:
                monitor.finished(job.result())
            except Exception as e:  # the job was killed, timed out for good, or never ran
                name = job.submission().args[0]["name"]
                monitor.finished(_failed(by_name[name], f"submitit job {job.job_id}: "
                                                        f"{type(e).__name__}: {e}"))
        live = still
        monitor.running(sum(1 for j in live if j.state in ("RUNNING", "COMPLETING")) if
                        ex.cluster != "local" else len(live))
