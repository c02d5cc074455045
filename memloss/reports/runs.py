"""Read run directories into plain tables for the reports (no model is loaded).

A :class:`RunRecord` holds what a report shows of one run: its config, metrics.jsonl
records, final.json and the probe outputs in ``diagnostics/``. Runs are labelled by what
differs between them: :func:`label_runs` gives each run a ``label`` (its scheme, short)
and a ``group`` (the other settings that differ, e.g. the task's length), so that runs
differing only in their seed share a label and are drawn as one curve with a band.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from memloss.core import runfiles as rd

__all__ = ["RunRecord", "read_run", "read_runs", "label_runs", "scheme_labels", "flat_config",
           "VOLATILE_KEYS"]

log = logging.getLogger(__name__)

#: config.json / metrics keys that change from one identical run to the next (times,
#: machine details); reports leave them out so that their output is reproducible
VOLATILE_KEYS = ("created", "resumed", "versions", "command", "seconds")
#: settings that do not make runs different experiments
_IGNORED = ("seed", "progress", "device", "eval_batch_size", "hooks", "threads")


@dataclass(frozen=True)
class RunRecord:
    """One run directory as tables. ``diagnostics`` maps probe name to its tidy frame and
    ``probe_meta`` to its JSON (params, summary)."""

    path: Path
    config: dict
    metrics: tuple[dict, ...]
    final: dict
    diagnostics: dict[str, pd.DataFrame] = field(default_factory=dict)
    probe_meta: dict[str, dict] = field(default_factory=dict)
    label: str = ""
    group: str = ""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def train(self) -> dict:
        return self.config.get("train", {})

    @property
    def seed(self) -> int | None:
        return self.train.get("seed")


def _read_diagnostics(path: Path) -> tuple[dict[str, pd.DataFrame], dict[str, dict]]:
    frames: dict[str, pd.DataFrame] = {}
    metas: dict[str, dict] = {}
    folder = path / "diagnostics"
    if not folder.is_dir():
        return frames, metas
    for csv in sorted(folder.glob("*.csv")):
        try:
            frame = pd.read_csv(csv)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise rd.RunDirError(f"{csv} is not a readable CSV table ({e}); it is corrupt or "
                                 "truncated: re-run the probes (`memloss probe`)") from None
        if "value" not in frame.columns:
            raise rd.RunDirError(f"{csv} has no 'value' column (columns: {list(frame.columns)}); "
                                 "it was not written by a memloss probe")
        meta_path = csv.with_suffix(".json")
        meta = rd.read_json(meta_path) if meta_path.exists() else None
        problem = rd.ref_problem(path, meta.get("checkpoint") if isinstance(meta, dict) else None)
        if problem is not None and isinstance(meta, dict) and "checkpoint" in meta:
            log.warning("%s: left out, %s; re-run `memloss probe %s`", csv, problem, path)
            continue  # the probe measured other weights than the run's: never shown as its own
        if problem is not None:
            log.warning("%s: %s, so it may describe other weights than the run's; re-run "
                        "`memloss probe %s` to be sure", csv, problem, path)
        frames[csv.stem] = frame
        if isinstance(meta, dict):
            metas[csv.stem] = meta
    return frames, metas


def read_run(path: "str | os.PathLike[str]") -> RunRecord:
    """Read one run directory; raises :class:`memloss.core.runfiles.RunDirError` (a ValueError)
    naming the missing, truncated or corrupt file."""
    path = Path(path)
    if not path.is_dir():
        raise rd.RunDirError(f"run directory {path} does not exist; pass folders written by "
                             "`memloss train --out` (or `memloss demo`)")
    config = rd.read_json(path / rd.CONFIG, "config")
    if not isinstance(config.get("train"), dict):
        raise rd.RunDirError(f"{path / rd.CONFIG} has no 'train' section; it was not written by "
                             "memloss train")
    final = rd.read_json(path / rd.FINAL, "final") if (path / rd.FINAL).exists() else {}
    if not final:
        log.warning("%s has no final.json (training did not finish); its test metrics are empty",
                    path)
    else:
        problem = rd.final_problem(path, final)
        if problem is not None:
            log.warning("%s: %s; its test metrics are not those of the weights it holds", path,
                        problem)
    metrics = tuple(rd.read_jsonl(path / rd.METRICS))
    frames, metas = _read_diagnostics(path)
    return RunRecord(path, config, metrics, final if isinstance(final, dict) else {}, frames, metas)


def scheme_labels(config: dict) -> tuple[str, str]:
    """A run's scheme as recorded in its config.json: ``(text form, short form)``, e.g.
    ``("moon:p=0.5,sampling=sequence,scaling=expectation", "moon/sequence")``. Run
    directories without ``labels`` show the text form for both."""
    labels = config.get("labels")
    train = config.get("train", {})
    net = train.get("net") if isinstance(train.get("net"), dict) else train
    spec = str(net.get("scheme", "none"))
    if isinstance(labels, dict) and isinstance(labels.get("scheme_short"), str):
        return str(labels.get("scheme", spec)), labels["scheme_short"]
    return spec, spec


def flat_config(train: dict) -> dict[str, Any]:
    """The train config flattened (``task.length``, net fields by their plain names),
    without run-invariant keys."""
    out: dict[str, Any] = {}
    for k, v in train.items():
        if k in _IGNORED:
            continue
        if k == "task_params" and isinstance(v, dict):
            for pk, pv in v.items():
                if pk != "seed":
                    out[f"task.{pk}"] = pv
        elif k == "net" and isinstance(v, dict):
            for nk, nv in v.items():
                out[nk] = json.dumps(nv, sort_keys=True) if isinstance(nv, (list, dict)) else nv
        else:
            out[k] = json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v
    return out


def label_runs(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """Give every run a ``label`` (scheme, short unless two different schemes would read the
    same) and a ``group`` (the other settings that differ between the runs)."""
    flats = [flat_config(r.train) for r in runs]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    differ = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]
    labels = [scheme_labels(r.config) for r in runs]
    schemes = [full for full, _ in labels]
    shorts = [short for _, short in labels]
    clash = {s for s in set(shorts) if len({full for full, sh in zip(schemes, shorts) if sh == s}) > 1}
    out = []
    for run, flat, full, short in zip(runs, flats, schemes, shorts):
        label = full if short in clash else short
        group = ", ".join(f"{k.removeprefix('task.')}={flat.get(k)}" for k in differ if k != "scheme")
        out.append(replace(run, label=label, group=group))
    return out


def read_runs(paths: Sequence["str | os.PathLike[str]"]) -> list[RunRecord]:
    """Read and label several run directories (in the order given)."""
    if not paths:
        raise ValueError("no run directories given; pass one or more folders written by "
                         "`memloss train --out`")
    seen: set[Path] = set()
    runs = []
    for p in paths:
        resolved = Path(p).resolve()
        if resolved in seen:
            raise ValueError(f"run directory {p} is given twice; pass each run once")
        seen.add(resolved)
        runs.append(read_run(p))
    return label_runs(runs)
