"""Training: ``train(config, out_dir) -> Run`` and the pieces it is made of.

:mod:`.run` is ``train()`` (start or resume one run), :mod:`.resume` ``resume_or_start``,
:mod:`.trainer` the loop, :mod:`.callbacks` the hooks into it, :mod:`.guards` the checks
made before anything is written; building the task and the net is :mod:`memloss.build`,
run directories are :mod:`memloss.runs` and :mod:`memloss.core.runfiles`, scoring a split
is :func:`memloss.tasks.evaluate`.
"""
from __future__ import annotations

from memloss.build import build_net, build_task
from memloss.config import TrainConfig, apply_overrides, changed_fields
from memloss.tasks.evaluation import evaluate

from .callbacks import CALLBACKS, Callback, Checkpointer, MetricsLogger
from . import trackers  # noqa: F401  (registers the tracker callbacks)
from .resume import resume_or_start
from .run import train
from .trainer import NonFiniteError, Trainer

__all__ = ["TrainConfig", "train", "evaluate", "build_task", "build_net", "Trainer", "Callback",
           "MetricsLogger", "Checkpointer", "CALLBACKS", "NonFiniteError", "apply_overrides",
           "changed_fields", "resume_or_start"]
