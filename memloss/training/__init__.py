"""Training: ``train(config, out_dir) -> Run`` and the pieces it is made of.

:mod:`.trainer` is the loop, :mod:`.callbacks` the hooks into it; building the task and
the net is :mod:`memloss.build`, run directories are :mod:`memloss.runs`, scoring a split
is :func:`memloss.tasks.evaluate`.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

from memloss.build import build_net, build_task, net_config
from memloss.config import RESUME_OVERRIDABLE, TrainConfig, apply_overrides
from memloss.core import runfiles as rf
from memloss.runs import Run, config_record, now
from memloss.tasks.evaluation import evaluate

from .callbacks import CALLBACKS, Callback, Checkpointer, MetricsLogger
from . import trackers  # noqa: F401  (registers the tracker callbacks)
from .resume import resume_or_start
from .trainer import NonFiniteError, Trainer

__all__ = ["TrainConfig", "train", "evaluate", "build_task", "build_net", "Trainer", "Callback",
           "MetricsLogger", "Checkpointer", "CALLBACKS", "NonFiniteError", "apply_overrides",
           "changed_fields", "resume_or_start"]

log = logging.getLogger(__name__)


def changed_fields(new: TrainConfig, old: TrainConfig) -> list[str]:
    """The options that differ between two configs (net fields by their plain names)."""
    a, b = new.to_dict(), old.to_dict()
    out = [k for k in a if k != "net" and a[k] != b.get(k)]
    out += [k for k in a["net"] if a["net"][k] != b["net"].get(k)]
    return sorted(out)


def train(config: TrainConfig | None, out_dir: str | Path, *, resume: bool = False,
          callbacks: Sequence[Callback] = (), command: Sequence[str] | None = None,
          info: dict | None = None) -> Run:
    """Train one run into ``out_dir`` and return it (path, configs, net, task, metrics and
    the final test metrics; the net holds the weights final.json was scored with).

    New run: ``config`` is required and ``out_dir`` must not already hold a run.
    ``resume=True``: continue the run in ``out_dir`` from its checkpoint; ``config`` may be
    None (use the saved one) or differ only in :data:`~memloss.config.RESUME_OVERRIDABLE`
    fields (e.g. a larger ``max_steps``). Everything is validated (task, parameters, net)
    before anything is written; the net is built once. Raises :class:`NonFiniteError` on a
    non-finite loss or gradient (the last good checkpoint stays in place). ``info`` (JSON)
    is stored under ``config.json["info"]`` (the CLI records the preset and its reported
    numbers there).
    """
    out = Path(out_dir)
    command = list(command) if command is not None else list(sys.argv)
    if resume:
        saved = rf.read_json(out / rf.CONFIG)
        old = TrainConfig.from_dict(saved["train"])
        if config is not None:
            diff = [k for k in changed_fields(config, old) if k not in RESUME_OVERRIDABLE]
            if diff:
                raise ValueError(f"cannot change {diff} when resuming {out}; only "
                                 f"{', '.join(RESUME_OVERRIDABLE)} may change")
        cfg = config or old
        task = build_task(cfg)
        trainer = Trainer(cfg, out, callbacks, task=task, net=net_config(cfg, task))
        trainer.load_checkpoint()
        saved["train"] = cfg.to_dict()
        saved.setdefault("resumed", []).append({"command": command, "time": now(),
                                                "step": trainer.step})
        rf.write_json(out / rf.CONFIG, saved)
        log.info("resuming %s at epoch %d step %d", out, trainer.epoch, trainer.step)
    else:
        if config is None:
            raise ValueError("train() needs a TrainConfig for a new run")
        if rf.is_run_dir(out):
            raise ValueError(f"{out} already holds a run; resume it with --resume {out} or "
                             "choose another --out")
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; give a directory")
        task = build_task(config)
        trainer = Trainer(config, out, callbacks, task=task, net=net_config(config, task))
        record = config_record(config, trainer.net_config, path=trainer.net.rnn.chosen_path(),
                               task_info=task.run_info(), command=command, info=info)
        out.mkdir(parents=True, exist_ok=True)
        rf.write_json(out / rf.CONFIG, record)
        if (out / rf.METRICS).exists():
            (out / rf.METRICS).unlink()
    final = trainer.fit()
    saved_config = rf.read_json(out / rf.CONFIG)
    if final["weights"] == "best" and final["weights_step"] != trainer.step:
        trainer.net.load_state_dict(rf.load_weights(out / rf.BEST))
    trainer.net.eval()
    return Run(out, saved_config, trainer.net, trainer.task, rf.read_jsonl(out / rf.METRICS),
               final, final["weights"])
