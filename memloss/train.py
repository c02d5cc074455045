"""One trainer for every task: ``train(config, out_dir) -> Path`` and ``evaluate(...)``.

The loop draws minibatches from ``task.batches("train", ...)``, samples dropout masks from
an explicit generator, carries (detached) state across batches when ``Batch.carry``,
clips, steps the optimiser, validates at each epoch end (and every ``eval_every`` steps),
applies the learning-rate schedule and early stopping, and hands every event to
callbacks: :class:`MetricsLogger` (metrics.jsonl), :class:`Checkpointer` (weights,
optimiser, schedule and RNG state) and any user :class:`Callback` (e.g. diagnostics).

Randomness comes from four generators seeded from ``config.seed``: weight init (seed),
data order (seed+1), training masks (seed+2), MC evaluation (seed+3, fresh per
evaluation). Evaluation never touches the training generators, so a run resumed from a
checkpoint continues bit for bit on CPU.
"""
from __future__ import annotations

import importlib
import logging
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from memloss.models import INFERENCE_MODES, Net, NetConfig
from memloss.core.registry import Registry
from memloss.tasks import Batch, Task, make_task

from . import rundir as rd
from .config import RESUME_OVERRIDABLE, TrainConfig, apply_overrides

__all__ = ["TrainConfig", "train", "evaluate", "build_task", "build_net", "Trainer", "Callback",
           "MetricsLogger", "Checkpointer", "CALLBACKS", "NonFiniteError", "apply_overrides",
           "predict"]

log = logging.getLogger(__name__)

#: callbacks that configs name in ``hooks``: factories ``(config) -> Callback``
CALLBACKS: Registry[Any] = Registry("callback")


class NonFiniteError(ValueError):
    """Training produced a non-finite loss or gradient."""


# --- building -------------------------------------------------------------------------------
def build_task(config: TrainConfig) -> Task:
    """The config's task; unknown parameters fail listing the valid ones."""
    try:
        return make_task(config.task, **config.task_params)
    except TypeError as e:
        from dataclasses import fields, is_dataclass

        from memloss.tasks import TASKS

        cls = TASKS.get(config.task)
        valid = [f.name for f in fields(cls)] if is_dataclass(cls) else []
        raise ValueError(f"task {config.task!r} rejected its parameters {config.task_params} "
                         f"({e}); valid parameters: {', '.join(valid) or 'see its docs'}") from None


def net_config(config: TrainConfig, task: Task) -> NetConfig:
    fixed = task.net_kwargs()
    clash = sorted(set(fixed) & {k for k, v in config.net_fields().items() if v is not None})
    if clash:
        raise ValueError(f"task {config.task!r} fixes {clash}; do not set them in the config")
    return NetConfig(**config.net_fields(), **fixed)


def build_net(config: TrainConfig, task: Task) -> Net:
    """The net for ``task``, initialised from ``config.seed`` without touching the global RNG."""
    cfg = net_config(config, task)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return Net(cfg)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use --set device=cpu")
    return torch.device(name)


def _optimizer(config: TrainConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    c = config
    if c.optimizer == "sgd":
        return torch.optim.SGD(params, lr=c.lr, weight_decay=c.weight_decay)
    if c.optimizer == "momentum":
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    if c.optimizer == "adam":
        return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
    return torch.optim.RMSprop(params, lr=c.lr, alpha=c.rmsprop_alpha, weight_decay=c.weight_decay)


def _resolve_hooks(config: TrainConfig) -> list["Callback"]:
    if config.hooks:
        try:  # diagnostics registers its training hooks on import
            importlib.import_module("memloss.diagnostics")
        except ImportError:
            pass
    return [CALLBACKS.get(name)(config) for name in config.hooks]


# --- inference ------------------------------------------------------------------------------
State = Any


def _detach(h: State) -> State:
    if h is None:
        return None
    if isinstance(h, tuple):
        return tuple(x.detach() for x in h)
    return h.detach()


def predict(net: Net, inputs: Tensor, states: Sequence[State] | None = None, *,
            mode: str = "deterministic", samples: int = 10,
            generator: torch.Generator | None = None, regression: bool = False
            ) -> tuple[Tensor, list[State]]:
    """Predictions ``[B, T, C]`` under an inference mode, and the final states.

    Same as :meth:`memloss.models.Net.predict_proba` (softmax probabilities; raw outputs when
    ``regression``), but also takes and returns the recurrent state(s) so that evaluation
    can carry state across a stream: one state for ``deterministic``/``train-mode``, one
    per sample for ``mc`` (each MC sample is its own network).
    """
    if mode not in INFERENCE_MODES:
        raise ValueError(f"unknown inference mode {mode!r}; valid: {', '.join(INFERENCE_MODES)}")
    k = samples if mode == "mc" else 1
    if mode == "mc" and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise ValueError(f"mc inference needs samples >= 1, got {samples!r}")
    states = list(states) if states is not None else [None] * k
    if len(states) != k:
        raise ValueError(f"predict got {len(states)} states for {k} sample(s)")
    total, new_states = None, []
    with torch.no_grad():
        for s in states:
            out, h = net(inputs, s, stochastic=mode != "deterministic", generator=generator)
            p = out if regression else torch.softmax(out, dim=-1)
            total = p if total is None else total + p
            new_states.append(h)
    return total / k, new_states


def evaluate(net: Net, task: Task, split: str = "test", *, mode: str = "deterministic",
             samples: int = 10, batch_size: int = 256, generator: torch.Generator | None = None,
             device: torch.device | str | None = None, seed: int = 0) -> dict[str, float]:
    """Score ``net`` on a split of ``task`` under an inference mode; returns ``task.finalize``.

    ``mc`` averages ``samples`` sampled mask sets (Gal eq. 4); masks come from
    ``generator`` (default: a fresh generator seeded with ``seed``, so results repeat).
    State is carried across batches when the task's batches say ``carry``.
    """
    if mode not in INFERENCE_MODES:
        raise ValueError(f"unknown inference mode {mode!r}; valid: {', '.join(INFERENCE_MODES)}")
    if device is None:
        device = next(net.parameters()).device
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    was_training = net.training
    net.eval()
    sums: dict[str, float] = {}
    states: list[State] | None = None
    try:
        for batch in task.batches(split, batch_size):
            batch = batch.to(device)
            if not (batch.carry and states is not None and _fits(states[0], batch)):
                states = None
            pred, states = predict(net, batch.inputs, states, mode=mode, samples=samples,
                                   generator=gen, regression=task.regression)
            for key, v in task.score(pred, batch).items():
                sums[key] = sums.get(key, 0.0) + float(v)
    finally:
        net.train(was_training)
    if not sums:
        raise ValueError(f"task {task.name!r} has no {split!r} data to evaluate")
    return task.finalize(sums)


def _fits(h: State, batch: Batch) -> bool:
    if h is None:
        return False
    first = h[0] if isinstance(h, tuple) else h
    return first.shape[1] == batch.inputs.shape[0]


# --- callbacks ------------------------------------------------------------------------------
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
        rd.append_jsonl(trainer.run_dir / rd.METRICS, record)
        shown = {k: v for k, v in record.items() if k.startswith(("train_", "valid_"))}
        log.info("epoch %s step %d lr %.4g %s", record["epoch"], record["step"], record["lr"],
                 " ".join(f"{k}={v:.4g}" for k, v in shown.items() if isinstance(v, float)))


class Checkpointer(Callback):
    """Writes the resumable checkpoint after every evaluation and at the end."""

    def on_evaluate(self, trainer: "Trainer", record: dict) -> None:
        trainer.save_checkpoint()

    def on_train_end(self, trainer: "Trainer", final: dict) -> None:
        trainer.save_checkpoint()


def _total_norm(grads: list[Tensor]) -> Tensor:
    """The L2 norm of all gradients together."""
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def _with_last(it: Iterator[Batch]) -> Iterator[tuple[Batch, bool]]:
    """Yield ``(item, is_last)`` by looking one item ahead."""
    try:
        cur = next(it)
    except StopIteration:
        return
    for nxt in it:
        yield cur, False
        cur = nxt
    yield cur, True


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("memloss", "torch", "numpy", "safetensors", "pandas", "tqdm"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _disable(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None hides bars when stderr is not a terminal."""
    return None if progress is None else not progress


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- the trainer ----------------------------------------------------------------------------
class Trainer:
    """The training loop over one run directory. Use :func:`train` unless you need the object."""

    def __init__(self, config: TrainConfig, run_dir: Path, callbacks: Sequence[Callback] = ()):
        self.config = config
        self.run_dir = Path(run_dir)
        self.device = _device(config.device)
        self.task = build_task(config)
        self.net = build_net(config, self.task).to(self.device)
        self.optimizer = _optimizer(config, self.net.parameters())
        # user callbacks first: they may add keys to the record before it is logged
        self.callbacks: list[Callback] = [*_resolve_hooks(config), *callbacks, MetricsLogger(),
                                          Checkpointer()]
        self.data_gen = torch.Generator().manual_seed(config.seed + 1)
        self.mask_gen = torch.Generator().manual_seed(config.seed + 2)
        self.epoch_data_state = self.data_gen.get_state()
        self.epoch = 0            # epochs completed
        self.step = 0             # optimiser steps completed
        self.batch_in_epoch = 0   # batches of the current epoch completed
        self.lr = config.lr
        self.step_lr = config.lr  # the learning rate of the latest step (logged)
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad_evals = 0
        self.stopped: str | None = None
        self.hx: State = None
        self.last_batch: Batch | None = None
        self.checkpoint_step: int | None = None
        self._reset_accumulators()
        self._t_last = time.perf_counter()

    # --- state -----------------------------------------------------------------------------
    def _reset_accumulators(self) -> None:
        self.loss_sum, self.loss_count, self.train_sums = 0.0, 0, {}

    def loop_state(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "batch_in_epoch": self.batch_in_epoch,
                "lr": self.lr, "step_lr": self.step_lr, "best": self.best, "best_step": self.best_step,
                "bad_evals": self.bad_evals, "stopped": self.stopped, "loss_sum": self.loss_sum,
                "loss_count": self.loss_count, "train_sums": dict(self.train_sums)}

    def save_checkpoint(self) -> None:
        """model.safetensors + trainer_state.pt/.json for the current step (atomic each).

        Non-finite weights are never saved: the previous checkpoint stays."""
        self._check_weights()
        meta = {"step": str(self.step)}
        rd.save_weights(self.run_dir / rd.MODEL, self.net.state_dict(), meta)
        hx = [] if self.hx is None else list(self.hx if isinstance(self.hx, tuple) else (self.hx,))
        state = {"optimizer": self.optimizer.state_dict(), "mask_rng": self.mask_gen.get_state(),
                 "data_rng": self.epoch_data_state, "hx": [h.cpu() for h in hx],
                 "hx_tuple": isinstance(self.hx, tuple), "loop": self.loop_state()}
        rd.save_state(self.run_dir / rd.STATE, state)
        rd.write_json(self.run_dir / rd.STATE_JSON, self.loop_state())
        self.checkpoint_step = self.step

    def load_checkpoint(self) -> None:
        weights = rd.load_weights(self.run_dir / rd.MODEL)
        state = rd.load_state(self.run_dir / rd.STATE)
        try:
            loop = state["loop"]
            self.net.load_state_dict(weights)
            self.optimizer.load_state_dict(state["optimizer"])
            self.mask_gen.set_state(state["mask_rng"])
            self.epoch_data_state = state["data_rng"]
        except (KeyError, RuntimeError, TypeError, ValueError) as e:
            raise rd.RunDirError(f"checkpoint in {self.run_dir} does not match its config "
                                 f"({type(e).__name__}: {e}); it cannot be resumed") from None
        meta = rd.weights_metadata(self.run_dir / rd.MODEL)
        if meta.get("step") != str(loop["step"]):
            raise rd.RunDirError(
                f"{self.run_dir}: model.safetensors (step {meta.get('step')}) and "
                f"trainer_state.pt (step {loop['step']}) disagree; the checkpoint was "
                "interrupted while being written and cannot be resumed exactly")
        for k in ("epoch", "step", "batch_in_epoch", "lr", "best", "best_step", "bad_evals",
                  "loss_sum", "loss_count"):
            setattr(self, k, loop[k])
        self.train_sums = dict(loop["train_sums"])
        self.stopped = None
        hx = [h.to(self.device) for h in state["hx"]]
        self.hx = None if not hx else (tuple(hx) if state["hx_tuple"] else hx[0])
        self._set_lr(self.lr)
        self.step_lr = loop.get("step_lr", self.lr)
        self.checkpoint_step = self.step

    def _check_weights(self) -> None:
        bad = [n for n, p in self.net.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            self._non_finite(f"non-finite weights ({', '.join(bad[:3])}) after epoch "
                             f"{self.epoch + (self.batch_in_epoch > 0)} step {self.step}")

    def _set_lr(self, lr: float) -> None:
        self.lr = max(lr, self.config.min_lr)
        for g in self.optimizer.param_groups:
            g["lr"] = self.lr

    # --- loop ------------------------------------------------------------------------------
    def _should_stop(self) -> bool:
        c = self.config
        if self.stopped:
            return True
        if c.max_steps is not None and self.step >= c.max_steps:
            self.stopped = "max_steps"
        elif c.epochs is not None and self.epoch >= c.epochs:
            self.stopped = "epochs"
        return self.stopped is not None

    def fit(self) -> dict:
        c = self.config
        for cb in self.callbacks:
            cb.on_train_start(self)
        self.net.train()
        bar_epochs = tqdm(total=c.epochs, initial=self.epoch, desc="epochs", unit="epoch",
                          disable=_disable(c.progress))
        while not self._should_stop():
            self.data_gen.set_state(self.epoch_data_state)
            train_task = self.task.at_epoch(self.epoch)
            batches = _with_last(train_task.batches("train", c.batch_size, generator=self.data_gen))
            for _ in range(self.batch_in_epoch):  # resuming mid-epoch: replay the order
                next(batches)
            bar = tqdm(batches, desc=f"epoch {self.epoch + 1}", unit="batch", leave=False,
                       initial=self.batch_in_epoch,
                       disable=_disable(c.progress))
            ran = False
            for batch, last in bar:
                ran = True
                self._train_step(batch)
                if last:
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    self.hx = None
                    self.epoch_data_state = self.data_gen.get_state()
                    if c.schedule == "decay" and self.epoch >= c.decay_start:
                        self._set_lr(self.lr * c.lr_decay)
                    bar_epochs.update(1)
                if last or (c.eval_every and self.step % c.eval_every == 0):
                    self._evaluate()
                if self._should_stop():
                    break
            bar.close()
            if not ran:
                raise ValueError(f"task {self.task.name!r} yielded no training batches")
        bar_epochs.close()
        final = self._final()
        for cb in self.callbacks:
            cb.on_train_end(self, final)
        return final

    def _train_step(self, batch: Batch) -> None:
        c = self.config
        batch = batch.to(self.device)
        self.last_batch = batch
        hx = self.hx if (batch.carry and _fits(self.hx, batch)) else None
        out, h_n = self.net(batch.inputs, hx, generator=self.mask_gen)
        loss = self.task.loss(out, batch)
        where = f"epoch {self.epoch + 1} step {self.step + 1}"
        if not torch.isfinite(loss):
            self._non_finite(f"non-finite training loss ({loss.item()}) at {where}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.net.parameters() if p.grad is not None]
        norm = _total_norm(grads)
        if not torch.isfinite(norm):
            self._non_finite(f"non-finite gradient norm ({norm.item()}) at {where}")
        if c.clip is not None:  # max-norm clipping (Pascanu et al. 2013), as clip_grad_norm_
            coef = (c.clip / (norm + 1e-6)).clamp(max=1.0)
            for g in grads:
                g.mul_(coef)
        self.optimizer.step()
        self.step_lr = self.lr
        self.hx = _detach(h_n) if batch.carry else None
        self.step += 1
        self.batch_in_epoch += 1
        value = loss.item()
        self.loss_sum += value
        self.loss_count += 1
        with torch.no_grad():
            pred = out if self.task.regression else torch.softmax(out, dim=-1)
            for k, v in self.task.score(pred.detach(), batch).items():
                self.train_sums[k] = self.train_sums.get(k, 0.0) + float(v)
        for cb in self.callbacks:
            cb.on_step_end(self, value)

    def _non_finite(self, what: str) -> None:
        if self.checkpoint_step is None:
            kept = "no checkpoint had been written yet"
        else:
            kept = f"the last good checkpoint (step {self.checkpoint_step}) is kept in {self.run_dir}"
        raise NonFiniteError(f"{what}; {kept}. Lower the learning rate (lr={self.lr:g}) or set "
                             "clip (max-norm gradient clipping)")

    def _evaluate(self) -> None:
        c, task = self.config, self.task
        self._check_weights()
        now = time.perf_counter()
        record: dict[str, Any] = {"epoch": self.epoch, "batch": self.batch_in_epoch,
                                  "step": self.step, "lr": self.step_lr}
        if self.loss_count:
            record["train_loss"] = self.loss_sum / self.loss_count
            try:
                for k, v in task.finalize(self.train_sums).items():
                    record[f"train_{k}"] = v
            except (ValueError, KeyError, ZeroDivisionError):
                pass
        valid = evaluate(self.net, task, "valid", mode=c.valid_mode, samples=c.mc_samples,
                         batch_size=c.eval_batch_size, seed=c.seed + 3, device=self.device)
        self.net.train()
        for k, v in valid.items():
            record[f"valid_{k}"] = v
        score = valid[task.metric]
        better = self.best is None or (score < self.best if task.lower_is_better else score > self.best)
        if better:
            self.best, self.best_step, self.bad_evals = score, self.step, 0
            rd.save_weights(self.run_dir / rd.BEST, self.net.state_dict(), {"step": str(self.step)})
        else:
            self.bad_evals += 1
            if c.schedule == "plateau":
                self._set_lr(self.lr * c.lr_decay)
            if c.patience is not None and self.bad_evals >= c.patience:
                self.stopped = "early_stopping"
        record["valid_best"] = self.best
        record["seconds"] = now - self._t_last
        self._reset_accumulators()
        for cb in self.callbacks:
            cb.on_evaluate(self, record)
        self._t_last = time.perf_counter()

    def _final(self) -> dict:
        c = self.config
        use_best = c.restore_best and self.best_step is not None and (self.run_dir / rd.BEST).exists()
        net = self.net
        if use_best and self.best_step != self.step:
            net = build_net(c, self.task).to(self.device)
            net.load_state_dict(rd.load_weights(self.run_dir / rd.BEST))
        final: dict[str, Any] = {"weights": "best" if use_best else "last",
                                 "weights_step": self.best_step if use_best else self.step,
                                 "step": self.step, "epoch": self.epoch, "stopped": self.stopped,
                                 "metric": self.task.metric, "best_valid": self.best, "test": {}}
        for mode in c.eval_modes:
            m = evaluate(net, self.task, "test", mode=mode, samples=c.mc_samples,
                         batch_size=c.eval_batch_size, seed=c.seed + 3, device=self.device)
            if mode == "mc":
                m = {**m, "samples": c.mc_samples}
            final["test"][mode] = m
            log.info("test (%s): %s", mode, " ".join(f"{k}={v:.4g}" for k, v in m.items()))
        self.net.train()
        rd.write_json(self.run_dir / rd.FINAL, final)
        return final


# --- the public entry point -----------------------------------------------------------------
def train(config: TrainConfig | None, out_dir: str | Path, *, resume: bool = False,
          callbacks: Sequence[Callback] = (), command: Sequence[str] | None = None,
          info: dict | None = None) -> Path:
    """Train one run into ``out_dir`` and return its path.

    New run: ``config`` is required and ``out_dir`` must not already hold a run.
    ``resume=True``: continue the run in ``out_dir`` from its checkpoint; ``config`` may be
    None (use the saved one) or differ only in :data:`~memloss.config.RESUME_OVERRIDABLE`
    fields (e.g. a larger ``max_steps``). Everything is validated (task, parameters, net)
    before anything is written. Raises :class:`NonFiniteError` on a non-finite loss or
    gradient (the last good checkpoint stays in place). ``info`` (JSON) is stored under
    ``config.json["info"]`` (the CLI records the preset and its reported numbers there).
    """
    out = Path(out_dir)
    command = list(command) if command is not None else list(sys.argv)
    if resume:
        saved = rd.read_json(out / rd.CONFIG)
        old = TrainConfig.from_dict(saved["train"])
        if config is not None:
            diff = sorted(k for k in TrainConfig.field_names()
                          if getattr(config, k) != getattr(old, k) and k not in RESUME_OVERRIDABLE)
            if diff:
                raise ValueError(f"cannot change {diff} when resuming {out}; only "
                                 f"{', '.join(RESUME_OVERRIDABLE)} may change")
        cfg = config or old
        trainer = Trainer(cfg, out, callbacks)
        trainer.load_checkpoint()
        saved["train"] = cfg.to_dict()
        saved.setdefault("resumed", []).append({"command": command, "time": _now(),
                                                "step": trainer.step})
        rd.write_json(out / rd.CONFIG, saved)
        log.info("resuming %s at epoch %d step %d", out, trainer.epoch, trainer.step)
    else:
        if config is None:
            raise ValueError("train() needs a TrainConfig for a new run")
        if rd.is_run_dir(out):
            raise ValueError(f"{out} already holds a run; resume it with --resume {out} or "
                             "choose another --out")
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; give a directory")
        trainer = Trainer(config, out, callbacks)
        out.mkdir(parents=True, exist_ok=True)
        rd.write_json(out / rd.CONFIG, {
            "train": config.to_dict(), "net": trainer.net.config.to_dict(),
            "path": trainer.net.rnn.chosen_path(), "task_info": trainer.task.run_info(), "command": command, "versions": _versions(),
            "seed": config.seed, "created": _now(), "resumed": [], "info": dict(info or {})})
        if (out / rd.METRICS).exists():
            (out / rd.METRICS).unlink()
    trainer.fit()
    return out
