"""Scoring a net on a task's split under an inference mode: what the trainer validates with,
``memloss eval`` reports, the demo records for the training split and the probes sweep.

One :class:`~memloss.models.inference.Runner` scores all the batches of a split, so a
streamed task (``Batch.carry``) is scored with its state carried from batch to batch, and
each of the K ``mc`` networks keeps its masks for the whole evaluation (Gal eq. 4).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Iterable

import torch
from tqdm.auto import tqdm

from memloss.core import validate
from memloss.models import Net
from memloss.models.inference import MODES, Runner, check_mode, mean_prediction, net_dtype, \
    state_batch

from .base import SPLITS, Batch, Task

__all__ = ["evaluate", "score_batches", "state_fits", "first_examples", "batch_for",
           "is_regression"]

_REGRESSION_METRICS = ("mse", "rmse", "mae")


def is_regression(task: Any) -> bool:
    """Whether a task scores raw outputs (``regression = True`` or a mse/rmse/mae metric)
    rather than class probabilities."""
    return bool(getattr(task, "regression", False)) or \
        getattr(task, "metric", "") in _REGRESSION_METRICS


def state_fits(h: Any, batch: Batch) -> bool:
    """True when a carried state ``h`` has the batch's size (a stream's last batch may not)."""
    return h is not None and state_batch(h) == batch.inputs.shape[0]


def batch_for(net: Net, batch: Batch, device: torch.device | str | None = None) -> Batch:
    """``batch`` on ``device`` (default: the net's) with float inputs in the net's dtype."""
    if device is None:
        device = next(net.parameters()).device
    batch = batch.to(device)
    if batch.inputs.is_floating_point() and batch.inputs.dtype != net_dtype(net):
        batch = replace(batch, inputs=batch.inputs.to(net_dtype(net)))
    return batch


def first_examples(batches: Iterable[Batch], max_examples: int | None) -> Iterable[Batch]:
    """The batches holding the first ``max_examples`` sequences (the last one cut to fit)."""
    seen = 0
    for batch in batches:
        if max_examples is not None:
            if seen >= max_examples:
                return
            keep = min(batch.inputs.shape[0], max_examples - seen)
            if keep < batch.inputs.shape[0]:
                w = None if batch.weights is None else batch.weights[:keep]
                lens = None if batch.lengths is None else batch.lengths[:keep]
                batch = replace(batch, inputs=batch.inputs[:keep], targets=batch.targets[:keep],
                                weights=w, lengths=lens)
            seen += keep
        yield batch


def score_batches(net: Net, task: Task, batches: Iterable[Batch], *, mode: str,
                  samples: int = 10, generator: torch.Generator | None = None,
                  device: torch.device | str | None = None, what: str = "batch"
                  ) -> dict[str, float]:
    """``task.finalize`` of the summed ``task.score`` over ``batches``, scored in order by one
    :class:`~memloss.models.inference.Runner` (any mode of
    :data:`~memloss.models.inference.MODES`, ``other-scaling`` included). The net is put in
    eval mode for the call; ``what`` names the data in the error raised when there is none."""
    check_mode(mode, samples, MODES)
    runner = Runner(net, mode, samples=samples, generator=generator)
    was_training = net.training
    net.eval()
    sums: dict[str, float] = {}
    try:
        for batch in batches:
            batch = batch_for(net, batch, device)
            outs = runner(batch.inputs, carry=batch.carry, lengths=batch.lengths)
            pred = mean_prediction(outs, is_regression(task))
            for key, v in task.score(pred, batch).items():
                sums[key] = sums.get(key, 0.0) + float(v)
    finally:
        net.train(was_training)
    if not sums:
        name = getattr(task, "name", type(task).__name__)
        raise ValueError(f"task {name!r} has no {what} to evaluate")
    return task.finalize(sums)


def evaluate(net: Net, task: Task, split: str = "test", *, mode: str = "deterministic",
             samples: int = 10, batch_size: int = 256, generator: torch.Generator | None = None,
             device: torch.device | str | None = None, seed: int = 0,
             max_examples: int | None = None, progress: bool | None = False
             ) -> dict[str, float]:
    """Score ``net`` on a split of ``task`` under an inference mode; returns ``task.finalize``.

    ``mc`` averages the predicted probabilities of ``samples`` sampled networks (Gal eq.
    4), each one fixed draw of the masks for the whole evaluation; masks come from
    ``generator`` (default: a fresh generator seeded with ``seed``, so results repeat).
    State is carried across batches when the task's batches say ``carry``. ``max_examples``
    scores only the first sequences of the split (whole batches; the last is cut to fit).
    ``progress``: a bar over the batches with their total (``None``: on a terminal only).
    """
    check_mode(mode, samples)
    validate.choice("evaluate", "split", split, SPLITS)
    validate.integer("evaluate", "batch_size", batch_size)
    validate.optional(validate.integer, "evaluate", "max_examples", max_examples)
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    batches = list(task.batches(split, batch_size))  # their number is the bar's total
    if max_examples is not None:
        batches = batches[:math.ceil(max_examples / batch_size)]
    bar = tqdm(first_examples(batches, max_examples), total=len(batches),
               desc=f"{split} ({mode}{f', {samples} samples' if mode == 'mc' else ''})",
               unit="batch", leave=False, disable=None if progress is None else not progress)
    try:
        return score_batches(net, task, bar, mode=mode, samples=samples, generator=gen,
                             device=device, what=f"{split!r} data")
    finally:
        bar.close()
