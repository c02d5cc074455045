"""The training loop over one run directory: :class:`Trainer`.

The loop draws minibatches from ``task.batches("train", ...)``, samples dropout masks from
an explicit generator, carries (detached) state across batches when ``Batch.carry``,
clips, steps the optimiser, validates at each epoch end (and every ``eval_every`` steps),
applies the learning-rate schedule and early stopping, and hands every event to
callbacks: :class:`~memloss.training.callbacks.MetricsLogger` (metrics.jsonl),
:class:`~memloss.training.callbacks.Checkpointer` (weights, optimiser, schedule and RNG
state) and any user :class:`~memloss.training.callbacks.Callback`.

Randomness comes from the run's streams (:mod:`memloss.core.seeds`): weight init, data
order, training masks, and evaluation masks (fresh per evaluation). Evaluation never
touches the training generators, so a run resumed from a checkpoint continues bit for bit
on CPU.
"""
from __future__ import annotations

import logging
import math
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from memloss.build import build_net, build_task, device, net_config
from memloss.config import TrainConfig
from memloss.core import runfiles as rf
from memloss.core.seeds import stream_seed
from memloss.models import NetConfig
from memloss.runs import now
from memloss.tasks import Batch, Task
from memloss.tasks.evaluation import evaluate, state_fits

from .callbacks import Callback, Checkpointer, MetricsLogger, resolve_hooks
from .signals import held as _interrupts_held
from .signals import stop_on_termination

__all__ = ["Trainer", "NonFiniteError", "torch_threads"]

log = logging.getLogger(__name__)

State = Any


class NonFiniteError(ValueError):
    """Training produced a non-finite loss or gradient."""


def _optimizer(config: TrainConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    c = config
    if c.optimizer == "sgd":
        return torch.optim.SGD(params, lr=c.lr, weight_decay=c.weight_decay)
    if c.optimizer == "momentum":
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    if c.optimizer == "adam":
        return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
    return torch.optim.RMSprop(params, lr=c.lr, alpha=c.rmsprop_alpha, weight_decay=c.weight_decay)


def _detach(h: State) -> State:
    if h is None:
        return None
    if isinstance(h, tuple):
        return tuple(x.detach() for x in h)
    return h.detach()


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


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to ``n`` (None: unchanged), and
    restore the previous count afterwards."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _costs_so_far() -> dict[str, Any]:
    """This process's wall clock, CPU time and step-kernel building costs so far (the costs
    ``runtime.jsonl`` records as differences)."""
    from memloss.models.paths.kernels import compile_stats

    return {"seconds": time.perf_counter(), "cpu_seconds": time.process_time(),
            "kernels": compile_stats()}


def _disable(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None hides bars when stderr is not a terminal."""
    return None if progress is None else not progress


# --- the trainer ----------------------------------------------------------------------------
class Trainer:
    """The training loop over one run directory. Use :func:`train` unless you need the object."""

    def __init__(self, config: TrainConfig, run_dir: Path, callbacks: Sequence[Callback] = (),
                 *, task: Task | None = None, net: NetConfig | None = None):
        """``task`` and ``net`` (the complete NetConfig) when the caller already built them
        from ``config`` (:func:`memloss.training.train` validates before writing)."""
        self._began = _costs_so_far()  # before the net's first pass compiles any kernel
        self._first_step = 0           # the step this process started training at (fit)
        self.config = config
        self.run_dir = Path(run_dir)
        self.device = device(config.device)
        self.task = task if task is not None else build_task(config)
        self.net_config = net if net is not None else net_config(config, self.task)
        self.net = build_net(config, self.task, self.net_config).to(self.device)
        log.info("scheme: %s", self.net_config.scheme.spec)  # resolved, defaults included
        self.optimizer = _optimizer(config, self.net.parameters())
        # user callbacks first: they may add keys to the record before it is logged
        self.callbacks: list[Callback] = [*resolve_hooks(config), *callbacks, MetricsLogger(),
                                          Checkpointer()]
        self.data_gen = torch.Generator().manual_seed(stream_seed(config.seed, "data"))
        self.mask_gen = torch.Generator().manual_seed(stream_seed(config.seed, "masks"))
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
        self.checkpoint: rf.Checkpoint | None = None  # the last committed checkpoint
        self.metrics_lines = 0    # records in metrics.jsonl
        self._best_weights: dict[str, Tensor] | None = None  # best weights not yet committed
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

    @property
    def checkpoint_step(self) -> int | None:
        """The step of the last committed checkpoint (None before the first)."""
        return None if self.checkpoint is None else self.checkpoint.step

    def _state(self) -> dict:
        hx = [] if self.hx is None else list(self.hx if isinstance(self.hx, tuple) else (self.hx,))
        return {"optimizer": self.optimizer.state_dict(), "mask_rng": self.mask_gen.get_state(),
                "data_rng": self.epoch_data_state, "hx": [h.cpu() for h in hx],
                "hx_tuple": isinstance(self.hx, tuple), "loop": self.loop_state()}

    def save_checkpoint(self) -> None:
        """Commit the checkpoint of the current step as one unit
        (:func:`memloss.core.runfiles.commit_checkpoint`): weights, best weights, optimizer,
        schedule, RNG and loop state, and the metrics.jsonl position. A Ctrl-C while it is
        written takes effect once it is complete. Non-finite weights are never saved (the
        previous checkpoint stays); a checkpoint identical to the last one is not rewritten."""
        ckpt = self.checkpoint
        if (ckpt is not None and not ckpt.legacy and ckpt.step == self.step
                and ckpt.manifest["metrics_lines"] == self.metrics_lines
                and self._best_weights is None):
            return
        self._check_weights()
        best: dict[str, Tensor] | rf.Checkpoint | None = self._best_weights
        if best is None and ckpt is not None and ckpt.has(rf.BEST):
            best = ckpt
        record = {"epoch": self.epoch, "metrics_lines": self.metrics_lines,
                  "best_step": self.best_step, "train": self.config.to_dict(),
                  "net": self.net_config.to_dict(), "loop": self.loop_state()}
        with _interrupts_held():
            self.checkpoint = rf.commit_checkpoint(self.run_dir, self.step,
                                                   model=self.net.state_dict(),
                                                   state=self._state(), best=best, record=record)
        self._best_weights = None

    def load_checkpoint(self, ckpt: rf.Checkpoint) -> None:
        """Continue from a committed checkpoint (digests and finiteness checked on load)."""
        weights = ckpt.weights(rf.MODEL)
        state = ckpt.state()
        if ckpt.has(rf.BEST):
            ckpt.weights(rf.BEST)  # verified now, not after training to the end
        loop = state["loop"]
        try:
            self.net.load_state_dict(weights)
            self.optimizer.load_state_dict(state["optimizer"])
            self.mask_gen.set_state(state["mask_rng"])
            self.data_gen.set_state(state["data_rng"])
            self.epoch_data_state = state["data_rng"]
        except (KeyError, RuntimeError, TypeError, ValueError, IndexError) as e:
            raise rf.RunDirError(f"checkpoint in {ckpt.folder} does not match its config "
                                 f"({type(e).__name__}: {str(e)[:120]}); it cannot be resumed") from None
        saved_step = ckpt.step if not ckpt.legacy else rf.weights_metadata(ckpt.path(rf.MODEL)).get("step")
        if str(saved_step) != str(loop["step"]):
            raise rf.RunDirError(
                f"{ckpt.folder}: model.safetensors (step {saved_step}) and trainer_state.pt "
                f"(step {loop['step']}) disagree; the checkpoint was interrupted while being "
                "written and cannot be resumed exactly")
        for k in ("epoch", "step", "batch_in_epoch", "lr", "best", "best_step", "bad_evals",
                  "loss_sum", "loss_count"):
            setattr(self, k, loop[k])
        self.train_sums = dict(loop["train_sums"])
        self.stopped = None
        hx = [h.to(self.device) for h in state["hx"]]
        self.hx = None if not hx else (tuple(hx) if state["hx_tuple"] else hx[0])
        self._set_lr(self.lr)
        self.step_lr = loop.get("step_lr", self.lr)
        self.checkpoint = ckpt
        self.metrics_lines = (ckpt.manifest["metrics_lines"] if not ckpt.legacy
                              else len(rf.read_jsonl(self.run_dir / rf.METRICS)))

    def preflight(self) -> None:
        """One forward and backward pass on a training batch, with throwaway generators,
        before anything is written: data files, the path and scheme, dtypes, memory and a
        non-finite first loss fail here. Weights, optimizer and generators stay untouched."""
        c = self.config
        batches = self.task.at_epoch(self.epoch).batches(
            "train", c.batch_size, generator=torch.Generator().manual_seed(0))
        batch = next(iter(batches), None)
        if batch is None:
            raise ValueError(f"task {self.task.name!r} yielded no training batches")
        batch = batch.to(self.device)
        out, _ = self.net(batch.inputs, None, generator=torch.Generator().manual_seed(0),
                          lengths=batch.lengths)
        loss = self.task.loss(out, batch)
        if not torch.isfinite(loss):
            if self.checkpoint is not None:
                raise NonFiniteError(
                    f"the weights of the checkpoint (step {self.step}) give a non-finite loss "
                    f"({loss.item()}) on the first batch: no change of lr or clip can continue "
                    "from them; start a new run with a lower lr or with clip")
            raise NonFiniteError(f"the loss of the first training batch is {loss.item()} with the "
                                 "initial weights; check init_range, forget_bias and the data")
        loss.backward()
        self.optimizer.zero_grad(set_to_none=True)

    def final_weights(self, final: dict) -> None:
        """Put the weights ``final`` (final.json) was scored with into the net."""
        if final["weights"] == "best" and final["weights_step"] != self.step:
            self.net.load_state_dict(self._best())

    def _best(self) -> dict[str, Tensor]:
        if self._best_weights is not None:
            return self._best_weights
        assert self.checkpoint is not None
        return self.checkpoint.weights(rf.BEST)

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
        """Train until a stopping rule fires, score the test split, write final.json; with
        torch's thread count set to ``config.threads`` meanwhile. SIGTERM, SIGUSR1 and
        SIGUSR2 stop it as Ctrl-C does (:mod:`memloss.training.signals`)."""
        self._first_step = self.step
        with torch_threads(self.config.threads), stop_on_termination():
            return self._fit()

    def _fit(self) -> dict:
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
        hx = self.hx if (batch.carry and state_fits(self.hx, batch)) else None
        out, h_n = self.net(batch.inputs, hx, generator=self.mask_gen, lengths=batch.lengths)
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
        clip = self.config.clip
        if self.checkpoint_step is None:
            fix = ("set clip (max-norm gradient clipping)" if clip is None else
                   f"the clip (clip={clip:g} is set; a NaN can also come from a state that "
                   "grows without bound, which clipping does not stop)")
            raise NonFiniteError(f"{what}, before the first checkpoint (nothing is kept). Lower "
                                 f"the learning rate (lr={self.lr:g}) or {fix} and start again")
        fix = ("with clip (max-norm gradient clipping)" if clip is None else
               f"a lower clip (clip={clip:g} is set)")
        raise NonFiniteError(f"{what}; the last good checkpoint (step {self.checkpoint_step}) is "
                             f"kept in {self.run_dir}. Continue from it with a lower learning "
                             f"rate (lr={self.lr:g}) or {fix}: "
                             f"memloss train --resume {self.run_dir} --set lr=... --set clip=...")

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
                         batch_size=c.eval_batch_size, seed=stream_seed(c.seed, "eval"),
                         device=self.device)
        self.net.train()
        bad = [k for k, v in valid.items() if not math.isfinite(v)]
        if bad:  # these weights are not a good checkpoint either
            self._non_finite(f"non-finite validation {', '.join(bad)} after epoch "
                             f"{self.epoch + (self.batch_in_epoch > 0)} step {self.step}")
        for k, v in valid.items():
            record[f"valid_{k}"] = v
        score = valid[task.metric]
        better = self.best is None or (score < self.best if task.lower_is_better else score > self.best)
        if better:
            self.best, self.best_step, self.bad_evals = score, self.step, 0
            self._best_weights = {k: v.detach().to("cpu", copy=True)
                                  for k, v in self.net.state_dict().items()}
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
        """Score the test split under every ``eval_modes`` with the final weights and, when
        validation kept other best weights, with those too (``final["by_weights"]``: ``last``
        and ``best``, each with its ``step`` and ``test`` scores); ``final["test"]`` is the
        one ``restore_best`` chooses (the best-validation weights are swapped in for their
        evaluation; the last weights stay for the checkpoint). Writes final.json."""
        c = self.config
        have_best = self._best_weights is not None or (
            self.checkpoint is not None and self.checkpoint.has(rf.BEST))
        has_best = self.best_step is not None and have_best
        use_best = c.restore_best and has_best
        final: dict[str, Any] = {"weights": "best" if use_best else "last",
                                 "weights_step": self.best_step if use_best else self.step,
                                 "step": self.step, "epoch": self.epoch, "stopped": self.stopped,
                                 "metric": self.task.metric, "best_valid": self.best, "test": {},
                                 "by_weights": {}}
        kinds = ["last"] + (["best"] if has_best and self.best_step != self.step else [])
        last = None
        try:
            for kind in kinds:
                if kind == "best":
                    last = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
                    self.net.load_state_dict(self._best())
                scores: dict[str, Any] = {}
                for mode in c.eval_modes:
                    m = evaluate(self.net, self.task, "test", mode=mode, samples=c.mc_samples,
                                 batch_size=c.eval_batch_size, seed=stream_seed(c.seed, "eval"),
                                 device=self.device)
                    scores[mode] = {**m, "samples": c.mc_samples} if mode == "mc" else m
                    log.info("test (%s, %s weights): %s", mode, kind,
                             " ".join(f"{k}={v:.4g}" for k, v in m.items()))
                step = self.step if kind == "last" else self.best_step
                final["by_weights"][kind] = {"step": step, "test": scores}
            if has_best and "best" not in final["by_weights"]:  # the best are the last weights
                final["by_weights"]["best"] = final["by_weights"]["last"]
            final["test"] = final["by_weights"]["best" if use_best else "last"]["test"]
        finally:
            if last is not None:
                self.net.load_state_dict(last)
            self.net.train()
        rf.write_json(self.run_dir / rf.FINAL, final)
        self._record_costs()
        return final

    def _record_costs(self) -> None:
        """Append what this process's training cost to ``runtime.jsonl``: wall and CPU
        seconds since the trainer was built (the CPU of this process's threads, not of
        Inductor's compile workers), the steps it trained, and what building the
        fused path's step kernels had cost the process before and after (``compile_stats``;
        the difference is this run's share, also in a sweep worker that trained other runs
        before). Not a result: it differs from one machine, cache and launcher to the next,
        so final.json and config.json leave it out. A failure to write it is a warning."""
        began, ended = self._began, _costs_so_far()
        k = ended["kernels"]
        if k["compiled_kernels"] or k["pending_kernels"]:
            log.info("step kernels: %d compiled (%d pending) in %.1f s, traced in %.1f s, "
                     "kept in %s", k["compiled_kernels"], k["pending_kernels"],
                     k["compile_seconds"], k["trace_seconds"], k["cache_dir"])
        record = {"time": now(), "host": socket.gethostname(),
                  "steps": [self._first_step, self.step],
                  "seconds": round(ended["seconds"] - began["seconds"], 3),
                  "cpu_seconds": round(ended["cpu_seconds"] - began["cpu_seconds"], 3),
                  "kernels": {"before": began["kernels"], "after": k}}
        path = self.run_dir / rf.RUNTIME
        try:
            rf.append_jsonl(path, record)
        except (OSError, ValueError) as e:  # the results are written; this is a side record
            log.warning("%s: this process's costs are not recorded (%s); the run's results are "
                        "complete", path, e)
