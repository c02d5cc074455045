"""``memloss train TASK|PRESET [--scheme S] [--set key=value ...] --out RUN_DIR [--resume-or-start]``
and ``memloss train --resume RUN_DIR [--set max_steps=N ...]``."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from memloss.runs import Run

__all__ = ["add_parser", "weights_scored"]

log = logging.getLogger(__name__)


def _run(args: argparse.Namespace) -> int:
    from memloss.resolve import preset_info, resolve_config
    from memloss.training import resume_or_start, train

    command = ["memloss", *sys.argv[1:]] if args.argv is None else args.argv
    if args.resume:
        if args.target or args.scheme or args.out:
            raise ValueError("--resume RUN_DIR continues a run with its saved config; do not "
                             "give a TASK, --scheme or --out (use --set max_steps=N to extend)")
        _show(train(None, args.resume, resume=True, command=command, overrides=args.set))
        return 0
    if not args.target:
        raise ValueError("name a task or preset to train (`memloss ls tasks`, `memloss ls "
                         "presets`), or --resume RUN_DIR")
    if not args.out:
        raise ValueError("--out RUN_DIR is required: the directory the run is written to")
    config = resolve_config(args.target, args.scheme, args.set)
    if args.resume_or_start:
        outcome = resume_or_start(config, args.out, command=command, info=preset_info(args.target))
        if outcome.saved is not None:  # finished before: show it as it was written
            from memloss.runs import read_final

            preset = (outcome.saved.record.get("info") or {}).get("preset")
            _print(outcome.path, read_final(outcome.path), preset)
            return 0
        assert outcome.run is not None
        _show(outcome.run)
        return 0
    _show(train(config, args.out, command=command, info=preset_info(args.target)))
    return 0


def _show(run: "Run") -> None:
    _print(run.path, run.final, run.preset)


def weights_scored(kind: str, step: "int | None", trained: "int | None") -> str:
    """Which weights a score is of, in words: ``kind`` ``"best"`` (best validation) or
    ``"last"``, ``step`` theirs, ``trained`` the steps the run has trained."""
    at = f"step {step}" if step is not None else "an unrecorded step"
    if kind == "best":
        if step is not None and trained is not None and step < trained:
            return (f"the best-validation weights of {at}, not the last (step {trained}): "
                    f"validation has not improved since step {step}")
        return f"the best-validation weights of {at} (also the last)"
    return f"the last weights, of {at}"


def _print(path: "Path", final: dict, preset: dict | None) -> None:
    """Which weights were scored, the final test metrics, and the paper's number for a
    preset's row."""
    kind, step = final.get("weights"), final.get("weights_step")
    if kind in ("best", "last"):
        line = f"{path}: scored {weights_scored(kind, step, final.get('step'))}"
        last = (final.get("by_weights") or {}).get("last")
        metric = final.get("metric")
        if kind == "best" and last and last.get("step") != step and metric:
            shown = ", ".join(f"{mode} {metric}={m[metric]:.4g}"
                              for mode, m in last["test"].items() if metric in m)
            line += f"; the last weights score {shown} (final.json by_weights.last)"
        print(line)
    for mode, metrics in final.get("test", {}).items():
        shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        print(f"{path}: test {mode}: {shown}")
    if preset and preset.get("reported"):
        shown = ", ".join(f"{k} {preset['bounds'].get(k, '')}{v:g}"
                          for k, v in preset["reported"].items())
        print(f"{path}: the paper ({preset['paper'].split(',')[0]}, {preset['table']}) reports "
              f"{preset['metric']} {shown}")


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("train", help="train a task or paper preset into a run directory",
                       description=__doc__.splitlines()[0])
    p.add_argument("target", nargs="?", help="task name or preset name (memloss ls tasks|presets)")
    p.add_argument("--scheme", help="regularization scheme, e.g. 'semeniuta:p=0.25,sampling=step'")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a TrainConfig field (lr=0.5, epochs=3, max_steps=100) or a "
                        "task parameter (task.length=30); repeatable")
    p.add_argument("--out", help="run directory to create")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly")
    p.add_argument("--resume-or-start", action="store_true",
                   help="with --out: leave a finished run as it is, resume an interrupted one "
                        "exactly, start an absent one (what a requeued cluster job calls)")
    p.set_defaults(func=_run, argv=None, hint=_hint)


def _hint(args: argparse.Namespace) -> str:
    """After an interruption or an environment error: where the run stands and how to go on."""
    from memloss.core import runfiles as rf

    run = args.resume or args.out
    if not run:
        return ""
    try:
        ckpt = rf.read_checkpoint(run)
    except (OSError, ValueError):
        ckpt = None
    if ckpt is None:
        return f"{run} holds no checkpoint (nothing was kept)"
    step = "" if ckpt.legacy else f" (step {ckpt.step})"
    return (f"the last complete checkpoint{step} is kept: continue with "
            f"`memloss train --resume {run}`")
