"""Fetching probe data from a task."""
from __future__ import annotations

from typing import Any, Iterator

import torch

from memloss.models import Net
from memloss.models.inference import check_modes
from memloss.tasks import SPLITS, Batch
from memloss.tasks.evaluation import batch_for

from .base import default_generator, net_device
from .unroll import check_stepwise, reference_view

__all__ = ["first_batch", "iter_batches", "check_split", "split_field", "splits_field",
           "modes_field", "probe_context"]


def check_split(owner: str, split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{owner}: unknown split {split!r}; valid: {', '.join(SPLITS)}")


def split_field(owner: str, name: str, value: object) -> None:
    """A probe field naming one split of the task (:func:`~memloss.diagnostics.base.checked`)."""
    check_split(owner, value)  # type: ignore[arg-type]


def splits_field(owner: str, name: str, value: object) -> None:
    """A probe field naming a non-empty tuple of splits."""
    if not isinstance(value, tuple) or not value:
        raise ValueError(f"{owner}: {name} must be a non-empty tuple, got {value!r}")
    for s in value:
        check_split(owner, s)


def modes_field(owner: str, name: str, value: object, *allowed: str) -> None:
    """A probe field naming inference modes among ``allowed``."""
    check_modes(owner, value, allowed)  # type: ignore[arg-type]


def iter_batches(net: Net, task: Any, split: str, batch_size: int, max_batches: int
                 ) -> Iterator[Batch]:
    """Up to ``max_batches`` batches of ``split`` (unshuffled, in the task's order, so a
    stream's batches follow each other), on the net's device, float inputs in its dtype."""
    for i, batch in enumerate(task.batches(split, batch_size)):
        if i >= max_batches:
            return
        yield batch_for(net, batch, net_device(net))


def first_batch(net: Net, task: Any, split: str, batch_size: int) -> Batch:
    """The first batch of ``split``; a clear error when the split is empty."""
    for batch in iter_batches(net, task, split, batch_size, 1):
        return batch
    raise ValueError(f"task {getattr(task, 'name', type(task).__name__)!r} yielded no "
                     f"{split!r} batch; check its data or pick another split")


def probe_context(net: Net, task: Any, split: str, batch_size: int,
                  generator: torch.Generator | None, owner: str
                  ) -> tuple[torch.Generator, torch.device, Net, Batch]:
    """What a step-wise probe starts from: its generator, the net's device, the net on the
    reference path (:func:`reference_view`) and the first batch of ``split``. Refuses a net
    that a step-by-step run would not reproduce (:func:`check_stepwise`)."""
    device = net_device(net)
    view = reference_view(net)
    batch = first_batch(net, task, split, batch_size)
    check_stepwise(view, batch.inputs, owner)
    return default_generator(generator), device, view, batch
