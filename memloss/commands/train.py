"""``memloss train TASK|PRESET [--scheme S] [--set key=value ...] --out RUN_DIR [--resume-or-start]``
and ``memloss train --resume RUN_DIR [--set max_steps=N ...]``."""
from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["add_parser", "resolve_config", "preset_info"]

log = logging.getLogger(__name__)


def resolve_config(target: str, scheme: str | None = None, sets: list[str] | None = None):
    """A TrainConfig from a task or preset name plus ``--scheme`` and ``--set`` overrides.

    Everything is checked here (names, options, task parameters, the net), so a bad
    command line fails before any training starts.
    """
    from memloss.build import build_task, net_config
    from memloss.config import TrainConfig, apply_overrides
    from memloss.core.registry import closest
    from memloss.presets import PRESETS
    from memloss.tasks import TASKS

    if target in PRESETS:
        config = PRESETS.get(target).config
    elif target in TASKS:
        config = TrainConfig(task=target)
    else:
        close = closest(str(target).lower(), TASKS.list() + PRESETS.list())
        raise ValueError(f"unknown task or preset {target!r}; "
                         + (f"did you mean {', '.join(close)}? " if close else "")
                         + f"({len(TASKS.list())} tasks, {len(PRESETS.list())} presets: "
                         "`memloss ls tasks|presets`)")
    if scheme is not None:
        config = config.replace(scheme=scheme)
    config = apply_overrides(config, sets or [])
    net_config(config, build_task(config))  # validates task parameters, scheme and sizes
    return config


def preset_info(target: str) -> dict:
    """What config.json records about a preset: its paper row and reported numbers."""
    from memloss.presets import PRESETS

    if target not in PRESETS:
        return {}
    return {"preset": PRESETS.get(target).record()}


def _run(args: argparse.Namespace) -> int:
    from memloss.config import TrainConfig, apply_overrides
    from memloss.runs import read_config, read_final
    from memloss.training import train

    command = ["memloss", *sys.argv[1:]] if args.argv is None else args.argv
    if args.resume:
        if args.target or args.scheme or args.out:
            raise ValueError("--resume RUN_DIR continues a run with its saved config; do not "
                             "give a TASK, --scheme or --out (use --set max_steps=N to extend)")
        saved = TrainConfig.from_dict(read_config(args.resume)["train"])
        config = apply_overrides(saved, args.set) if args.set else None
        out = train(config, args.resume, resume=True, command=command).path
    else:
        if not args.target:
            raise ValueError("name a task or preset to train (`memloss ls tasks`, `memloss ls "
                             "presets`), or --resume RUN_DIR")
        if not args.out:
            raise ValueError("--out RUN_DIR is required: the directory the run is written to")
        config = resolve_config(args.target, args.scheme, args.set)
        if args.resume_or_start:
            from memloss.training import resume_or_start

            out = resume_or_start(config, args.out, command=command,
                                  info=preset_info(args.target)).path
        else:
            out = train(config, args.out, command=command, info=preset_info(args.target)).path
    final = read_final(out)
    for mode, metrics in final.get("test", {}).items():
        shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        print(f"{out}: test {mode}: {shown}")
    preset = read_config(out).get("info", {}).get("preset")
    if preset and preset.get("reported"):
        shown = ", ".join(f"{k} {preset['bounds'].get(k, '')}{v:g}"
                          for k, v in preset["reported"].items())
        print(f"{out}: the paper ({preset['paper'].split(',')[0]}, {preset['table']}) reports "
              f"{preset['metric']} {shown}")
    return 0


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
