"""Callbacks: hooks into the training loop, and the registry configs name them from."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from memloss.core import runfiles as rf
from memloss.core.registry import Registry

if TYPE_CHECKING:
    from memloss.config import TrainConfig

    from .trainer import Trainer

__all__ = ["Callback", "CALLBACKS", "MetricsLogger", "Checkpointer", "resolve_hooks"]

log = logging.getLogger(__name__)

#: callbacks that configs name in ``hooks``: factories ``(config) -> Callback``
CALLBACKS: Registry[Callable[["TrainConfig"], "Callback"]] = Registry("callback", entry_points="memloss.callbacks")


class Callback:
    """Hooks into the loop; override what you need. ``trainer`` exposes ``net``, ``task``,
    ``config``, ``optimizer``, ``run_dir``, ``epoch`` (epochs done), ``step`` (steps done),
    ``lr``, ``best`` and ``last_batch``."""

    def on_train_start(self, trainer: "Trainer") -> None: ...

    def on_step_end(self, trainer: "Trainer", loss: float) -> None: ...

    def on_evaluate(self, trainer: "Trainer", record: dict) -> None:
        """After validation and the schedule update; ``record`` is the metrics.jsonl line
        (user callbacks run before the logger, so keys they add are written)."""

    def on_train_end(self, trainer: "Trainer", final: dict) -> None: ...


class MetricsLogger(Callback):
    """Appends each evaluation record to metrics.jsonl and logs a one-line summary."""

    def on_evaluate(self, trainer: "Trainer", record: dict) -> None:
        rf.append_jsonl(trainer.run_dir / rf.METRICS, record)
        trainer.metrics_lines += 1
        shown = {k: v for k, v in record.items() if k.startswith(("train_", "valid_"))}
        log.info("epoch %s step %d lr %.4g %s", record["epoch"], record["step"], record["lr"],
                 " ".join(f"{k}={v:.4g}" for k, v in shown.items() if isinstance(v, float)))


class Checkpointer(Callback):
    """Writes the resumable checkpoint after every evaluation and at the end."""

    def on_evaluate(self, trainer: "Trainer", record: dict) -> None:
        trainer.save_checkpoint()

    def on_train_end(self, trainer: "Trainer", final: dict) -> None:
        trainer.save_checkpoint()


def resolve_hooks(config: "TrainConfig") -> list[Any]:
    """The callbacks a config names in ``hooks`` (unknown names fail listing the valid ones)."""
    return [CALLBACKS.get(name)(config) for name in config.hooks]
