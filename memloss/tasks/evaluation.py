"""Scoring a net on a task's split under an inference mode: what the trainer validates with,
``memloss eval`` reports and the demo records for the training split."""
from __future__ import annotations

from typing import Any

import math

import torch
from tqdm.auto import tqdm

from memloss.core import validate
from memloss.models import Net
from memloss.models.inference import check_mode, predict

from .base import SPLITS, Batch, Task

__all__ = ["evaluate", "state_fits"]


def state_fits(h: Any, batch: Batch) -> bool:
    """True when a carried state ``h`` has the batch's size (a stream's last batch may not)."""
    if h is None:
        return False
    first = h[0] if isinstance(h, tuple) else h
    return first.shape[1] == batch.inputs.shape[0]


def evaluate(net: Net, task: Task, split: str = "test", *, mode: str = "deterministic",
             samples: int = 10, batch_size: int = 256, generator: torch.Generator | None = None,
             device: torch.device | str | None = None, seed: int = 0,
             max_examples: int | None = None, progress: bool | None = False
             ) -> dict[str, float]:
    """Score ``net`` on a split of ``task`` under an inference mode; returns ``task.finalize``.

    ``mc`` averages ``samples`` sampled mask sets (Gal eq. 4); masks come from
    ``generator`` (default: a fresh generator seeded with ``seed``, so results repeat).
    State is carried across batches when the task's batches say ``carry``. ``max_examples``
    scores only the first sequences of the split (whole batches; the last is cut to fit).
    ``progress``: a bar over the batches with their total (``None``: on a terminal only).
    """
    check_mode(mode, samples)
    validate.choice("evaluate", "split", split, SPLITS)
    validate.integer("evaluate", "batch_size", batch_size)
    validate.optional(validate.integer, "evaluate", "max_examples", max_examples)
    if device is None:
        device = next(net.parameters()).device
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    was_training = net.training
    net.eval()
    sums: dict[str, float] = {}
    states: list[Any] | None = None
    seen = 0
    batches = list(task.batches(split, batch_size))  # their number is the bar's total
    if max_examples is not None:
        batches = batches[:math.ceil(max_examples / batch_size)]
    bar = tqdm(batches, desc=f"{split} ({mode}{f', {samples} samples' if mode == 'mc' else ''})",
               unit="batch", leave=False, disable=None if progress is None else not progress)
    try:
        for batch in bar:
            if max_examples is not None:
                if seen >= max_examples:
                    break
                keep = min(batch.inputs.shape[0], max_examples - seen)
                if keep < batch.inputs.shape[0]:
                    w = None if batch.weights is None else batch.weights[:keep]
                    batch = Batch(batch.inputs[:keep], batch.targets[:keep], w, batch.carry)
                seen += keep
            batch = batch.to(device)
            if not (batch.carry and states is not None and state_fits(states[0], batch)):
                states = None
            pred, states = predict(net, batch.inputs, states, mode=mode, samples=samples,
                                   generator=gen, regression=task.regression)
            for key, v in task.score(pred, batch).items():
                sums[key] = sums.get(key, 0.0) + float(v)
    finally:
        bar.close()
        net.train(was_training)
    if not sums:
        raise ValueError(f"task {task.name!r} has no {split!r} data to evaluate")
    return task.finalize(sums)
