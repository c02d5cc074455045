"""Fetching probe data from a task."""
from __future__ import annotations

from typing import Any, Iterator

import torch

from tasks import SPLITS, Batch

__all__ = ["first_batch", "iter_batches", "check_split"]


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
