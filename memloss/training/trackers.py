"""Experiment trackers as training callbacks: TensorBoard, MLflow and Weights & Biases.

Selected by name in a config's ``hooks`` (``memloss train ... --set hooks=tensorboard``,
several as ``hooks=tensorboard,mlflow``). Each logs the run's options once, every
evaluation record (``train_*``, ``valid_*``, ``lr``) at its step, and the final test metrics
under each inference mode. The packages are optional extras (``pip install
'memloss[tensorboard]'``, ``memloss[mlflow]``, ``memloss[wandb]``); naming a tracker whose
package is missing fails before the run starts, saying what to install. Where they write
follows each tool's own conventions:

* ``tensorboard``: event files in ``RUN/tensorboard/`` (``tensorboard --logdir RUN``), with
  the loss of every training step (``train/step_loss``) and, at the end, an HParams entry
  (the run's settings against its test metrics and best validation score) in
  ``RUN/tensorboard/hparams/``;
* ``mlflow``: the tracking URI in ``MLFLOW_TRACKING_URI`` (default ``./mlruns``), experiment
  ``MLFLOW_EXPERIMENT_NAME`` (default ``memloss``); a resumed run continues its MLflow run;
  the loss of every training step is ``train_step_loss``;
* ``wandb``: project ``WANDB_PROJECT`` (default ``memloss``); ``WANDB_MODE=offline`` writes
  locally; the W&B run id is derived from the run directory, so a resumed run continues it;
  the loss of every training step is ``train_step_loss``.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from .callbacks import CALLBACKS, Callback

if TYPE_CHECKING:
    from memloss.config import TrainConfig

    from .trainer import Trainer

__all__ = ["TensorBoardTracker", "MLflowTracker", "WandbTracker", "flat_params", "hparam_values",
           "scalars"]

log = logging.getLogger(__name__)

#: the TensorBoard run, under RUN/tensorboard, that holds a run's HParams entry
HPARAMS_RUN = "hparams"
#: the most metrics one MLflow ``log_batch`` request takes
STEP_BATCH = 1000


def _need(module: str, hook: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"hooks={hook} needs the {extra} package: pip install "
                         f"'memloss[{hook}]'") from None


def flat_params(config: "TrainConfig") -> dict[str, Any]:
    """The config as flat ``key: scalar`` pairs (``net.hidden_size``, ``task_params.length``)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)):
            out[prefix] = ",".join(map(str, value))
        else:
            out[prefix] = value

    walk("", config.to_dict())
    return out


def scalars(record: dict) -> dict[str, float]:
    """The numbers of a metrics.jsonl record worth plotting (train_*, valid_*, lr)."""
    return {k: float(v) for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
            and (k.startswith(("train_", "valid_")) or k == "lr")}


def final_scalars(final: dict) -> dict[str, float]:
    """``test/<mode>/<metric>`` from final.json."""
    return {f"test/{mode}/{k}": float(v) for mode, m in (final.get("test") or {}).items()
            for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _run_key(trainer: "Trainer") -> str:
    """A stable id for a run directory (the same when the run is resumed)."""
    return hashlib.sha1(str(trainer.run_dir.resolve()).encode()).hexdigest()[:16]


@CALLBACKS.register("tensorboard", "TensorBoard event files in RUN/tensorboard (torch.utils.tensorboard)")
class TensorBoardTracker(Callback):
    """Through :class:`torch.utils.tensorboard.SummaryWriter`: the options as text, the loss
    of every training step (``train/step_loss``), the records of every evaluation
    (``train/loss``, ``valid/...``, ``lr``), the test metrics at the end
    (``test/<mode>/<metric>``) and an HParams entry that sets :func:`hparam_values` against
    those metrics and ``valid/best`` (the run ``RUN/tensorboard/hparams``, rewritten at each
    end of training). A resumed run continues the same event files (events past the
    checkpoint's step are purged)."""

    def __init__(self, config: "TrainConfig") -> None:
        _need("tensorboard", "tensorboard", "tensorboard")
        self.writer: Any = None

    def on_train_start(self, trainer: "Trainer") -> None:
        from torch.utils.tensorboard import SummaryWriter

        # resuming from the checkpoint of step S: events past S (written after it by the
        # interrupted session) are dropped; those up to S, that step's evaluation included, stay
        self.writer = SummaryWriter(log_dir=str(trainer.run_dir / "tensorboard"),
                                    purge_step=trainer.step + 1 if trainer.step else None)
        if trainer.step == 0:
            self.writer.add_text("config", "```\n" + json.dumps(trainer.config.to_dict(), indent=2)
                                 + "\n```", 0)

    def on_step_end(self, trainer: "Trainer", loss: float) -> None:
        self.writer.add_scalar("train/step_loss", loss, trainer.step)

    def on_evaluate(self, trainer: "Trainer", record: dict) -> None:
        for k, v in scalars(record).items():
            self.writer.add_scalar(k.replace("_", "/", 1), v, record["step"])
        self.writer.flush()

    def on_train_end(self, trainer: "Trainer", final: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        metrics = final_scalars(final)
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, trainer.step)
        self.writer.close()
        if trainer.best is not None:
            metrics["valid/best"] = float(trainer.best)
        # The HParams entry is its own run, RUN/tensorboard/hparams, holding the entry and the
        # metrics it names (the dashboard reads their values from the same run). TensorBoard
        # keeps the first entry a run's files hold, so each end of training (a resumed run's
        # too) replaces that folder's event files rather than adding to them.
        folder = trainer.run_dir / "tensorboard" / HPARAMS_RUN
        for old in folder.glob("events.out.tfevents.*"):
            old.unlink()
        with SummaryWriter(log_dir=str(folder)) as writer:
            for summary in hparams(hparam_values(trainer.config), metrics):
                writer.file_writer.add_summary(summary, trainer.step)
            for k, v in metrics.items():
                writer.add_scalar(k, v, trainer.step)


def hparam_values(config: "TrainConfig") -> dict[str, int | float | str | bool]:
    """:func:`flat_params` as HParams accepts it: numbers, strings and booleans; settings
    that are ``None`` (unset) are left out, anything else is written as its text."""
    return {k: v if isinstance(v, (int, float, str, bool)) else str(v)
            for k, v in flat_params(config).items() if v is not None}


@CALLBACKS.register("mlflow", "MLflow: parameters, the loss of every step, metrics per "
                   "evaluation and the test metrics")
class MLflowTracker(Callback):
    """One MLflow run per run directory (tagged ``memloss.run_dir``; a resumed run logs into
    the same MLflow run). The loss of every training step (``train_step_loss``) is sent in
    one batch per evaluation, not one request per step."""

    def __init__(self, config: "TrainConfig") -> None:
        self.mlflow = _need("mlflow", "mlflow", "mlflow-skinny")
        self.run_id: str | None = None
        self.steps: list[tuple[int, float, int]] = []  # (step, loss, time in ms) not yet sent
        try:  # reach the tracking store now, before the run directory is written
            self.mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "memloss"))
        except Exception as e:
            raise ValueError(f"hooks=mlflow cannot reach the MLflow tracking store "
                             f"{self.mlflow.get_tracking_uri()!r}: {str(e).splitlines()[0]} "
                             "(set MLFLOW_TRACKING_URI to a server or database)") from None

    def on_train_start(self, trainer: "Trainer") -> None:
        mlflow = self.mlflow
        key = _run_key(trainer)
        found = mlflow.search_runs(filter_string=f"tags.`memloss.run_key` = '{key}'",
                                   output_format="list")
        run = mlflow.start_run(run_id=found[0].info.run_id if found else None,
                               run_name=None if found else trainer.run_dir.name)
        self.run_id = run.info.run_id
        if not found:
            mlflow.set_tags({"memloss.run_key": key, "memloss.run_dir": str(trainer.run_dir)})
            mlflow.log_params(flat_params(trainer.config))

    def on_step_end(self, trainer: "Trainer", loss: float) -> None:
        self.steps.append((trainer.step, float(loss), int(time.time() * 1000)))

    def _send_steps(self) -> None:
        from mlflow.entities import Metric

        metrics = [Metric("train_step_loss", v, t, s) for s, v, t in self.steps]
        client = self.mlflow.tracking.MlflowClient()
        for i in range(0, len(metrics), STEP_BATCH):  # the tracking API's batch limit
            client.log_batch(self.run_id, metrics=metrics[i:i + STEP_BATCH])
        self.steps = []

    def on_evaluate(self, trainer: "Trainer", record: dict) -> None:
        self._send_steps()
        self.mlflow.log_metrics(scalars(record), step=record["step"])

    def on_train_end(self, trainer: "Trainer", final: dict) -> None:
        self._send_steps()
        self.mlflow.log_metrics({k.replace("/", "_"): v for k, v in final_scalars(final).items()},
                                step=trainer.step)
        self.mlflow.end_run()


@CALLBACKS.register("wandb", "Weights & Biases: the config, the loss of every step, metrics per "
                   "evaluation and the test metrics")
class WandbTracker(Callback):
    """One W&B run per run directory (its id derived from the directory, resumed with it);
    the loss of every training step is ``train_step_loss`` (W&B batches what it sends)."""

    def __init__(self, config: "TrainConfig") -> None:
        self.wandb = _need("wandb", "wandb", "wandb")
        self.run: Any = None

    def on_train_start(self, trainer: "Trainer") -> None:
        self.run = self.wandb.init(project=os.environ.get("WANDB_PROJECT", "memloss"),
                                   id=_run_key(trainer), name=trainer.run_dir.name,
                                   resume="allow", dir=str(trainer.run_dir),
                                   config=flat_params(trainer.config))

    def on_step_end(self, trainer: "Trainer", loss: float) -> None:
        self.run.log({"train_step_loss": float(loss)}, step=trainer.step)

    def on_evaluate(self, trainer: "Trainer", record: dict) -> None:
        self.run.log(scalars(record), step=record["step"])

    def on_train_end(self, trainer: "Trainer", final: dict) -> None:
        self.run.summary.update(final_scalars(final))
        self.run.finish()
