"""``train(config, out_dir) -> Run``: start one run in a new directory, or resume one.

Everything is checked before the first byte is written (:mod:`.guards`); the loop is
:class:`~.trainer.Trainer`.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

from memloss.build import build_task, device, net_config
from memloss.config import RESUME_OVERRIDABLE, TrainConfig, apply_overrides, changed_fields
from memloss.core import runfiles as rf
from memloss.runs import (Run, check_not_edited, config_file, config_record, now,
                          read_run_config, trained_configs)

from .callbacks import Callback
from .guards import check_memory, check_out, make_dirs, remove_created, remove_half_run
from .trainer import Trainer

__all__ = ["train"]

log = logging.getLogger(__name__)


def train(config: TrainConfig | None, out_dir: str | Path, *, resume: bool = False,
          callbacks: Sequence[Callback] = (), command: Sequence[str] | None = None,
          info: dict | None = None, overrides: Sequence[str] = ()) -> Run:
    """Train one run into ``out_dir`` and return it (path, config.json and the configs,
    net, task, metrics and the final test metrics; the net holds the weights final.json was
    scored with). config.json is written, never read back.

    New run: ``config`` is required; ``out_dir`` must be new, an empty folder, or an earlier
    start of the same config that stopped before its first checkpoint. Everything (config,
    data files, the path and scheme, memory, a first forward and backward pass) is checked
    before the first byte is written, and a failure before the first checkpoint removes what
    was written. ``resume=True``: continue the run in ``out_dir`` from its last complete
    checkpoint (from the start if it stopped before one); ``config`` may be None (use the
    saved one) or differ only in :data:`~memloss.config.RESUME_OVERRIDABLE` fields (a larger
    ``max_steps``; after a NaN stop a lower ``lr``, a ``clip`` or another schedule), and
    each change is recorded in ``config.json["resumed"]``. ``overrides``: ``--set`` items
    (``max_steps=200``) applied to ``config``, or on a resume without one to the saved
    config, read under the run's lock.

    The run directory is locked while it is written (:class:`~memloss.core.runfiles.RunLock`);
    each checkpoint is committed as one unit. Raises :class:`NonFiniteError` on a non-finite
    loss, gradient or weight (the last good checkpoint stays in place). ``info`` (JSON) is
    stored under ``config.json["info"]``.
    """
    out = Path(out_dir)
    command = list(command) if command is not None else list(sys.argv)
    if resume:
        return _resume(config, out, callbacks, command, overrides)
    if config is None:
        raise ValueError("train() needs a TrainConfig for a new run")
    return _start(apply_overrides(config, overrides) if overrides else config, out, callbacks,
                  command, info)


def _build(config: TrainConfig, out: Path, callbacks: Sequence[Callback]) -> Trainer:
    task = build_task(config)
    net = net_config(config, task)
    dev = device(config.device)
    check_memory(net, dev)
    return Trainer(config, out, callbacks, task=task, net=net)


def _start(config: TrainConfig, out: Path, callbacks: Sequence[Callback], command: list[str],
           info: dict | None) -> Run:
    check_out(out, config)
    trainer = _build(config, out, callbacks)
    trainer.preflight()
    record = config_record(config, trainer.net_config, path=trainer.net.rnn.chosen_path(),
                           task_info=trainer.task.run_info(), command=command, info=info)
    created = make_dirs(out)
    lock = rf.RunLock(out, "train")
    try:
        lock.acquire()
    except BaseException:
        remove_created(out, created, lock_files=False)
        raise
    wrote = False
    try:
        restart = check_out(out, config)  # again, now that no one else can write it
        rf.clean_leftovers(out)
        if restart:
            log.info("%s holds an interrupted start of this run; starting it again", out)
            remove_half_run(out)
        wrote = True
        rf.write_json(out / rf.CONFIG, record)
        final = trainer.fit()
        return _finish(trainer, out, record, final)
    finally:
        half = trainer.checkpoint is None
        if wrote and half:
            remove_half_run(out)
        lock.release()
        if half:
            remove_created(out, created)


def _resume(config: TrainConfig | None, out: Path, callbacks: Sequence[Callback],
            command: list[str], overrides: Sequence[str]) -> Run:
    config_file(out)  # a clear error before the lock file is created in a non-run folder
    with rf.RunLock(out, "train --resume"):
        rf.clean_leftovers(out)
        saved = read_run_config(out)
        ckpt = rf.read_checkpoint(out)
        in_checkpoint = trained_configs(ckpt)
        check_not_edited(out, saved, in_checkpoint)
        trained = saved.train if in_checkpoint is None else in_checkpoint.train
        cfg = config or saved.train
        if overrides:
            cfg = apply_overrides(cfg, overrides)
        diff = [k for k in changed_fields(cfg, trained) if k not in RESUME_OVERRIDABLE]
        if diff:
            raise ValueError(f"cannot change {diff} when resuming {out}; only "
                             f"{', '.join(RESUME_OVERRIDABLE)} may change")
        trainer = _build(cfg, out, callbacks)
        if ckpt is not None:
            if in_checkpoint is not None and trainer.net_config != in_checkpoint.net:
                raise rf.RunDirError(f"{out}: the net built from the task's data now differs from "
                                     "the one the checkpoint was trained with (the data files "
                                     "changed?); restore the data or start a new run")
            trainer.load_checkpoint(ckpt)
            if not ckpt.legacy:
                dropped = rf.truncate_jsonl(out / rf.METRICS, trainer.metrics_lines)
                if dropped:
                    log.info("%s: %d metrics line(s) written after the last checkpoint are "
                             "redone", out, dropped)
        else:
            log.info("%s stopped before its first checkpoint; starting it from step 0", out)
            (out / rf.METRICS).unlink(missing_ok=True)
        changes = {k: [getattr(trained, k, None), getattr(cfg, k, None)]
                   for k in changed_fields(cfg, trained)}
        if "lr" in changes:
            trainer._set_lr(cfg.lr)
        trainer.preflight()
        record = saved.record
        record["train"] = cfg.to_dict()
        record.setdefault("resumed", []).append({"command": command, "time": now(),
                                                 "step": trainer.step, "changed": changes})
        rf.write_json(out / rf.CONFIG, record)
        log.info("resuming %s at epoch %d step %d%s", out, trainer.epoch, trainer.step,
                 f" with {', '.join(f'{k}={v[1]}' for k, v in changes.items())}" if changes else "")
        final = trainer.fit()
        return _finish(trainer, out, record, final)


def _finish(trainer: Trainer, out: Path, record: dict, final: dict) -> Run:
    """The run as written: ``record`` is the config.json this process wrote."""
    trainer.final_weights(final)
    trainer.net.eval()
    return Run(out, record, trainer.config, trainer.net_config, trainer.net, trainer.task,
               rf.read_jsonl(out / rf.METRICS), final, final["weights"])
