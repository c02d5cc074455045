"""Resume or start: what a requeued cluster job or a sweep calls on a run directory blindly.

:func:`resume_or_start` looks at ``out_dir`` and does the one right thing:

* absent (or empty): start the run;
* finished (``final.json`` written): leave it as it is;
* interrupted (config and checkpoint, no ``final.json``): resume it exactly
  (:func:`~memloss.training.run.train` with ``resume=True``);
* interrupted before its first checkpoint: nothing of it can be resumed, so it starts again
  (:func:`memloss.training.train` replaces an earlier start of the same config, under the
  run's lock, and refuses one of another config).

A directory holding a different run (another task, scheme, seed, ...) is an error naming the
options that differ, never overwritten.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from memloss.config import TrainConfig, changed_fields
from memloss.core import runfiles as rf
from memloss.runs import Run, RunConfig, read_run_config

from .run import train

__all__ = ["resume_or_start", "Outcome", "run_state", "saved_config", "differences", "NOT_RESULTS"]

log = logging.getLogger(__name__)

#: options that do not change a run's numbers: a finished run is the same run under any of them
NOT_RESULTS = ("progress", "device", "threads", "eval_batch_size", "hooks")

State = Literal["absent", "finished", "interrupted", "unstarted"]


@dataclass(frozen=True)
class Outcome:
    """What :func:`resume_or_start` did: ``action`` is ``"skipped"`` (already finished),
    ``"resumed"`` or ``"started"``; ``run`` is the trained run (None when skipped);
    ``saved``: the config.json of a run left as it was (None otherwise)."""

    action: Literal["skipped", "resumed", "started"]
    path: Path
    run: Run | None = None
    saved: RunConfig | None = None


def _has_checkpoint(out: Path) -> bool:
    return rf.read_checkpoint(out) is not None


def run_state(out_dir: str | Path) -> State:
    """``absent`` (no run), ``finished``, ``interrupted`` (resumable) or ``unstarted``
    (config.json written, killed before the first checkpoint)."""
    out = Path(out_dir)
    if not rf.is_run_dir(out):
        return "absent"
    if (out / rf.FINAL).is_file():
        return "finished"
    return "interrupted" if _has_checkpoint(out) else "unstarted"


def saved_config(out_dir: str | Path) -> TrainConfig:
    """The TrainConfig a run directory's config.json holds."""
    return read_run_config(out_dir).train


def differences(config: TrainConfig, saved: str | Path | TrainConfig) -> list[str]:
    """The options of ``config`` that change results and differ from the saved run's
    (``saved``: its TrainConfig, or its directory)."""
    if not isinstance(saved, TrainConfig):
        saved = saved_config(saved)
    return [k for k in changed_fields(config, saved) if k not in NOT_RESULTS]


def resume_or_start(config: TrainConfig, out_dir: str | Path, *,
                    command: Sequence[str] | None = None, info: dict | None = None) -> Outcome:
    """Start, resume or leave the run of ``config`` in ``out_dir`` (see the module doc).

    ``command`` and ``info`` are those of :func:`memloss.training.train`. A finished run
    whose saved config differs from ``config`` in anything but :data:`NOT_RESULTS` raises
    ValueError (its numbers belong to another setup); an interrupted one may differ only in
    :data:`~memloss.config.RESUME_OVERRIDABLE` (checked by ``train``).
    """
    out = Path(out_dir)
    state = run_state(out)
    if state == "finished":
        saved = read_run_config(out)
        diff = differences(config, saved.train)
        if diff:
            raise ValueError(f"{out} holds a finished run whose {', '.join(diff)} differ from "
                             "this config; choose another --out, or extend it with `memloss "
                             f"train --resume {out} --set KEY=VALUE`")
        log.info("%s is finished; left as it is", out)
        return Outcome("skipped", out, saved=saved)
    if state == "interrupted":
        log.info("%s was interrupted; resuming it", out)
        return Outcome("resumed", out, train(config, out, resume=True, command=command))
    if state == "unstarted":  # train() replaces an earlier start of the same config
        log.warning("%s stopped before its first checkpoint; starting it again", out)
    return Outcome("started", out, train(config, out, command=command, info=info))
