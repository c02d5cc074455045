"""Fetching probe data from a task."""
from __future__ import annotations

from typing import Any, Iterator

import torch

from memloss.models import Net
from memloss.tasks import SPLITS, Batch

from .base import default_generator, net_device
from .unroll import reference_view

__all__ = ["first_batch", "iter_batches", "check_split", "probe_context"]


def check_split(owner: str, split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{owner}: unknown split {split!r}; valid: {', '.join(SPLITS)}")


def iter_batches(task: Any, split: str, batch_size: int, max_batches: int,
                 device: torch.device) -> Iterator[Batch]:
    """Up to ``max_batches`` batches of ``split`` (unshuffled), on ``device``."""
    for i, batch in enumerate(task.batches(split, batch_size)):
        if i >= max_batches:
            return
        yield batch.to(device)


def first_batch(task: Any, split: str, batch_size: int, device: torch.device) -> Batch:
    """The first batch of ``split``; a clear error when the split is empty."""
    for batch in iter_batches(task, split, batch_size, 1, device):
        return batch
    raise ValueError(f"task {getattr(task, 'name', type(task).__name__)!r} yielded no "
                     f"{split!r} batch; check its data or pick another split")


def probe_context(net: Net, task: Any, split: str, batch_size: int,
                  generator: torch.Generator | None
                  ) -> tuple[torch.Generator, torch.device, Net, Batch]:
    """What a step-wise probe starts from: its generator, the net's device, the net on the
    reference path (:func:`reference_view`) and the first batch of ``split``."""
    device = net_device(net)
    return (default_generator(generator), device, reference_view(net),
            first_batch(task, split, batch_size, device))
