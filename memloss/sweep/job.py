"""One run of a sweep, as a worker executes it (in a pool process, a Ray task or a SLURM job).

:func:`run_job` resolves the run's config exactly as ``memloss train`` does, calls
:func:`memloss.training.resume_or_start`, logs to ``DIR/.sweep/logs/NAME.log`` and never
raises: a failure is written to ``DIR/.sweep/errors/NAME.json`` (message, traceback, host)
and returned, so one failure never stops the sweep. The result is a plain dict (it crosses
process and machine boundaries).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from memloss.core import runfiles as rf
from memloss.core.atomic import atomic_write_text
from memloss.core.runfiles import SWEEP_META, error_path

from .spec import RunSpec

__all__ = ["run_job", "SweepJob", "error_path", "log_path", "read_error", "SWEEP_META"]

def log_path(sweep_dir: str | os.PathLike, name: str) -> Path:
    return Path(sweep_dir) / SWEEP_META / "logs" / f"{name}.log"


def read_error(sweep_dir: str | os.PathLike, name: str) -> dict | None:
    p = error_path(sweep_dir, name)
    if not p.is_file():
        return None
    try:
        return rf.read_json(p)
    except rf.RunDirError:
        return {"error": f"{p} is unreadable"}


@contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """Send the memloss loggers' records to ``path`` while the run trains."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("memloss")
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # a worker's terminal belongs to the sweep's progress bar
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
        handler.close()


def _resume_or_start(resume_or_start: Any, config: Any, out: Path, **kwargs: Any) -> Any:
    """``resume_or_start``, looking once more when it failed while the run directory changed
    under another process (another sweep on the same folder started, checkpointed or
    finished the run between this worker's look and its lock): the second look resumes,
    skips, or meets the other process's lock (busy), instead of a false failure."""
    from memloss.training.resume import run_state

    before = run_state(out)
    try:
        return resume_or_start(config, out, **kwargs)
    except rf.RunLockedError:
        raise
    except Exception:
        if run_state(out) == before and rf.busy(out) is None:
            raise  # nothing changed: a real failure
        logging.getLogger(__name__).info("%s changed under another process; looking again", out)
        return resume_or_start(config, out, **kwargs)


def run_job(spec: dict[str, Any], sweep_dir: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Train (or resume, or skip) one run of a sweep; returns ``{"name", "status",
    "action", "seconds", "error"}`` with status ``done``, ``failed``, ``busy`` (another
    process holds the run's lock: not a failure, nothing is recorded) or ``stopped`` (a
    termination signal stopped it; the checkpoint is kept and a rerun resumes it). ``extra``: ``--set``
    items of how the sweep executes (``threads=1``, ``progress=false``), applied last."""
    from memloss.resolve import preset_info, resolve_config
    from memloss.runs import source_commit
    from memloss.training import resume_or_start
    from memloss.training.signals import Terminated

    spec = dict(spec, sets=[*spec.get("sets", ()), *extra])
    run = RunSpec.from_dict(spec)
    out = Path(sweep_dir) / run.name
    start = time.perf_counter()
    result: dict[str, Any] = {"name": run.name, "status": "done", "action": None, "error": None}
    with _log_to(log_path(sweep_dir, run.name)):
        try:
            config = resolve_config(run.target, run.scheme, list(run.sets))
            outcome = _resume_or_start(resume_or_start, config, out, command=run.argv(out),
                                       info=preset_info(run.target))
            result["action"] = outcome.action
            error_path(sweep_dir, run.name).unlink(missing_ok=True)
        except rf.RunLockedError as e:  # another sweep or process trains it: not a failure
            result.update(status="busy", error=str(e))
        except Terminated as e:  # SIGTERM/SIGUSR*: the checkpoint is kept, a rerun resumes it
            result.update(status="stopped", error=f"{e}; the last complete checkpoint is kept "
                          "and the next `memloss sweep` resumes it")
        except Exception as e:  # one failure never stops the sweep: record it and go on
            logging.getLogger(__name__).exception("run %s failed", run.name)
            result.update(status="failed", error=f"{type(e).__name__}: {e}")
            record = {"name": run.name, "error": result["error"],
                      "traceback": traceback.format_exc(), "host": platform.node(),
                      "pid": os.getpid(), "time": time.time(), "command": run.argv(out),
                      "commit": source_commit()}
            p = error_path(sweep_dir, run.name)
            p.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(p, json.dumps(record, indent=2) + "\n")
    result["seconds"] = time.perf_counter() - start
    return result


class SweepJob:
    """:func:`run_job` as a submitit callable: a SLURM job that is preempted or reaches its
    time limit is requeued (``checkpoint``) and resumes its run from the last checkpoint."""

    def __call__(self, spec: dict[str, Any], sweep_dir: str,
                 extra: tuple[str, ...] = ()) -> dict[str, Any]:
        return run_job(spec, sweep_dir, extra)

    def checkpoint(self, spec: dict[str, Any], sweep_dir: str, extra: tuple[str, ...] = ()) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, spec, sweep_dir, extra)
