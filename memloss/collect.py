"""``memloss collect``: many run directories into one table, and a summary beside the papers.

:func:`runs_frame` gives one row per run: every option of its config (``train.*``, the net's
fields as ``train.net.*``, task parameters as ``train.task_params.*``), the execution path,
the scheme's labels, the paper row it reproduces (``preset.*``), the commit of the code that
trained it (``commit``, :func:`memloss.runs.source_commit`), every final metric under every
inference mode (``test.<mode>.<metric>``) and under both the final and the best-validation
weights (``by_weights.<last|best>.test.<mode>.<metric>``), the best validation score, how training
stopped, timings (``train_seconds``: the training and validation time summed over
metrics.jsonl; ``evaluations``) and the package versions. :func:`collect` writes it as
Parquet or CSV together with the summary per (table, row) and the rank agreement per table
(:mod:`memloss.reports.paper_tables`), and every grid's cross-seed summary and paired
comparisons between its settings (:mod:`memloss.reports.grid_summary`).

A run directory that cannot be read (a malformed or corrupt file) is left out with its
reason and the rest are collected; ``memloss collect`` then exits with
:data:`LEFT_OUT_EXIT`. ``status`` says ``finished``, ``unfinished``, ``busy`` (another process
is writing it now: not a failure) or ``stale`` (final.json is about other weights than the
checkpoint: the run was resumed and has not finished again).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from memloss.core import runfiles as rf
from memloss.reports.grid_summary import GridSummary
from memloss.reports.paper_tables import paper_measurements, rank_agreement, summarize
from memloss.reports.runs import RunRecord, read_run

__all__ = ["find_runs", "runs_frame", "collect", "Collected", "output_paths", "FORMATS",
           "read_runs_kept", "LEFT_OUT_EXIT"]

log = logging.getLogger(__name__)

FORMATS = (".parquet", ".csv")
#: ``memloss collect``'s exit status when some runs were left out (the rest were written)
LEFT_OUT_EXIT = 3
#: folders that never hold runs (a sweep's own files)
_SKIP = (".sweep",)


def find_runs(paths: Sequence["str | os.PathLike[str]"]) -> list[Path]:
    """Run directories: each path that is one, else every run directory below it (sorted)."""
    if not paths:
        raise ValueError("give one or more run directories or sweep directories to collect")
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise ValueError(f"{p} does not exist; give run directories (memloss train --out) "
                             "or sweep directories (memloss sweep --out)")
        if rf.is_run_dir(p):
            found.append(p)
            continue
        below = sorted(c.parent for c in p.rglob(rf.CONFIG)
                       if not any(part in _SKIP for part in c.relative_to(p).parts)
                       and rf.is_run_dir(c.parent))
        if not below:
            raise ValueError(f"{p} holds no run directories (no */config.json below it)")
        found.extend(below)
    unique = list(dict.fromkeys(f.resolve() for f in found))
    return [Path(u) for u in unique]


def _scalar(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict, tuple)) else v


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flat(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = _scalar(value)


def run_row(run: RunRecord) -> dict[str, Any]:
    """One run as a flat row (see the module doc)."""
    c, final = run.config, run.final or {}
    who = rf.busy(run.path)
    stale = rf.final_problem(run.path, final) if final else None
    status = "busy" if who else ("finished" if final and not stale else
                                 "stale" if final else "unfinished")
    row: dict[str, Any] = {"run": run.name, "dir": str(run.path), "finished": bool(final),
                           "status": status,
                           "seed": run.seed, "commit": c.get("commit"), "path": c.get("path"),
                           "created": c.get("created"),
                           "resumed": len(c.get("resumed") or [])}
    for k, v in (c.get("labels") or {}).items():
        row[f"labels.{k}"] = v
    _flat("train", c.get("train") or {}, row)
    preset = (c.get("info") or {}).get("preset") or {}
    for k in ("name", "paper", "table", "row", "metric", "cpu_of"):
        row[f"preset.{k}"] = preset.get(k)
    for k, v in (preset.get("reported") or {}).items():
        row[f"preset.reported.{k}"] = v
    for mode, metrics in (final.get("test") or {}).items():
        for k, v in metrics.items():
            row[f"test.{mode}.{k}"] = v
    for kind, scored in (final.get("by_weights") or {}).items():
        row[f"by_weights.{kind}.step"] = scored.get("step")
        for mode, metrics in (scored.get("test") or {}).items():
            for k, v in metrics.items():
                row[f"by_weights.{kind}.test.{mode}.{k}"] = v
    for mode, metrics in (final.get("train") or {}).items() if isinstance(final.get("train"), dict) else ():
        for k, v in (metrics or {}).items():
            row[f"train_split.{mode}.{k}"] = v
    for k in ("metric", "best_valid", "weights", "weights_step", "step", "epoch", "stopped"):
        row[f"final.{k}"] = final.get(k)
    seconds = [m["seconds"] for m in run.metrics if isinstance(m.get("seconds"), (int, float))]
    row["train_seconds"] = float(sum(seconds)) if seconds else None
    row["evaluations"] = len(run.metrics)
    for k, v in (c.get("versions") or {}).items():
        row[f"versions.{k}"] = v
    return row


def runs_frame(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run, columns in first-seen order; a column whose runs hold values of
    different types (a task length given as ``30`` in one run and ``"medium"`` in another)
    is written as text, so that Parquet can store it."""
    frame = pd.DataFrame([run_row(r) for r in runs])
    for col in frame.columns:
        kinds = {type(v) for v in frame[col] if v is not None and not (isinstance(v, float) and v != v)}
        if len(kinds) > 1 and not kinds <= {int, float}:
            frame[col] = [None if v is None else str(v) for v in frame[col]]
    return frame


def output_paths(out: "str | os.PathLike[str]") -> tuple[Path, Path, Path]:
    """``results.parquet`` -> itself, ``results.summary.parquet``, ``results.agreement.parquet``."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"--out {out}: end it in .parquet or .csv (the format to write)")
    stem = out.with_suffix("")
    return out, stem.with_name(stem.name + ".summary" + out.suffix), \
        stem.with_name(stem.name + ".agreement" + out.suffix)


def _write(frame: pd.DataFrame, path: Path) -> None:
    from memloss.core.atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError("writing Parquet needs pyarrow: pip install 'memloss[parquet]', or "
                             "give --out FILE.csv") from None
        atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


class Collected:
    """What :func:`collect` produced: ``runs`` (one row per run), ``summary`` (per table row
    and split) and ``agreement`` (Kendall's tau per table and split), and where they went;
    ``left_out``: the run directories that could not be read, each with the reason."""

    def __init__(self, runs: pd.DataFrame, summary: pd.DataFrame, agreement: pd.DataFrame,
                 paths: tuple[Path, ...] = (), left_out: Sequence[tuple[Path, str]] = (),
                 grid: GridSummary | None = None):
        self.runs, self.summary, self.agreement, self.paths = runs, summary, agreement, paths
        self.left_out = list(left_out)
        #: every grid's cross-seed summary and paired comparisons (any runs, not only presets)
        self.grid = grid if grid is not None else GridSummary(runs)


def read_runs_kept(dirs: Sequence[Path]) -> tuple[list[RunRecord], list[tuple[Path, str]]]:
    """Read each run directory; one that is malformed or corrupt (any problem
    :func:`~memloss.reports.runs.read_run` names) is left out with its reason, so one bad
    run never stops the rest. A run another process is writing that cannot be read yet is
    left out as ``busy``; one that can be read is kept (``status`` ``busy`` in its row)."""
    records, left = [], []
    for d in dirs:
        who = rf.busy(d)
        try:
            records.append(read_run(d))
        except (rf.RunDirError, ValueError, OSError) as e:
            reason = f"busy: being written by {who}" if who else " ".join(str(e).split())[:300]
            log.warning("%s left out: %s", d, reason)
            left.append((d, reason))
    return records, left


def collect(paths: Sequence["str | os.PathLike[str]"],
            out: "str | os.PathLike[str] | None" = None) -> Collected:
    """Read the runs under ``paths`` and (with ``out``) write the three tables. A run that
    cannot be read is left out with its reason (:attr:`Collected.left_out`); the rest are
    collected."""
    records, left_out = read_runs_kept(find_runs(paths))
    runs = runs_frame(records)
    summary = summarize(paper_measurements(records))
    agreement = rank_agreement(summary)
    grid = GridSummary(runs)
    written: tuple[Path, ...] = ()
    if out is not None:
        targets = output_paths(out)
        stem = targets[0].with_suffix("")  # FILE.grid.* and FILE.paired.* beside them
        targets += tuple(stem.with_name(f"{stem.name}.{k}{targets[0].suffix}")
                         for k in ("grid", "paired"))
        for frame, path in zip((runs, summary, agreement, grid.summary, grid.paired), targets):
            _write(frame, path)
        written = targets
    unfinished = int((~runs["finished"]).sum()) if len(runs) else 0
    if unfinished:
        log.warning("%d of %d runs have not finished (no final.json); they are in the run "
                    "table but not in the summary", unfinished, len(runs))
    return Collected(runs, summary, agreement, written, left_out, grid)
