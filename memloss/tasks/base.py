"""The task interface shared by the trainer, the probes and the reports.

A task turns data into :class:`Batch` es for a :class:`memloss.models.Net`, says how big the net's
input and output are, defines the training objective, and scores predictions.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar, Iterator, Literal

import torch
from torch import Tensor

from memloss.core.registry import Registry

__all__ = ["Batch", "Task", "TASKS", "make_task", "list_tasks", "SPLITS"]

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Batch:
    """One minibatch, batch first.

    ``inputs``: ``[B, T]`` int64 token ids or ``[B, T, F]`` floats. ``targets``: ``[B]``
    (one label or value per sequence, read from the last step) or ``[B, T]`` (one per step).
    ``weights``: ``[B, T]``, 1 where a per-step target counts (0 on padding), or None.
    ``carry``: truncated BPTT; the final state of the previous batch is this batch's initial
    state (the trainer detaches it). ``lengths``: ``[B]`` int64, the real steps of each
    sequence of a right-padded batch of variable-length sequences (steps ``0 .. L-1``), passed
    to the net so that padding changes no result; None when every sequence fills ``T``.
    """

    inputs: Tensor
    targets: Tensor
    weights: Tensor | None = None
    carry: bool = False
    lengths: Tensor | None = None

    def to(self, device: "torch.device | str") -> "Batch":
        w = None if self.weights is None else self.weights.to(device)
        lens = None if self.lengths is None else self.lengths.to(device)
        return replace(self, inputs=self.inputs.to(device), targets=self.targets.to(device),
                       weights=w, lengths=lens)

    def last(self, output: Tensor) -> Tensor:
        """``output[b, L_b - 1]`` of ``[B, T, ...]``: each sequence's last real step (the
        last step when ``lengths`` is None), where a sequence-label task reads its prediction."""
        if self.lengths is None:
            return output[:, -1]
        idx = (self.lengths.to(output.device) - 1).view(-1, *([1] * (output.dim() - 1)))
        return output.gather(1, idx.expand(-1, 1, *output.shape[2:])).squeeze(1)


class Task(abc.ABC):
    """Base class of every task; concrete tasks are frozen dataclasses registered in TASKS.

    ``target``: ``"last"`` (predict from the last step) or ``"every"`` (every step).
    ``metric``: name of the headline metric; ``lower_is_better`` says its direction.
    ``regression``: True when the head's outputs are values, not class logits; then
    :meth:`score` receives raw outputs (MC inference averages outputs, not softmaxes).
    """

    name: ClassVar[str] = ""
    target: ClassVar[Literal["last", "every"]] = "last"
    metric: ClassVar[str] = "accuracy"
    lower_is_better: ClassVar[bool] = False
    regression: ClassVar[bool] = False

    @classmethod
    def tiny(cls, fixtures: Path) -> dict:
        """Task parameters that make a run of this task take a fraction of a second, for the
        generated tests (every registered task is trained from the command line with them).
        File-based tasks read small samples in their standard format from
        ``fixtures/<dataset>`` (the repository's ``tests/fixtures``). Every task declares
        this; a task that does not fails the tests instead of being skipped."""
        raise NotImplementedError(f"task {cls.name!r} declares no tiny parameters: implement "
                                  f"{cls.__name__}.tiny(fixtures) returning small task "
                                  "parameters")

    def run_info(self) -> dict:
        """JSON-serialisable facts a run must keep to be reproducible (e.g. the pMNIST
        permutation, a vocabulary's size); stored under ``task_info`` in config.json."""
        return {}

    def at_epoch(self, epoch: int) -> "Task":
        """The task to draw training batches from in ``epoch`` (0-based): a curriculum hook
        (e.g. conll-ner's 5-word then 15-word training sequences). Default: unchanged."""
        return self

    @abc.abstractmethod
    def net_kwargs(self) -> dict:
        """``NetConfig`` fields fixed by the data: input_size or vocab_size, output_size."""

    @abc.abstractmethod
    def batches(self, split: str, batch_size: int, *, generator: torch.Generator | None = None
                ) -> Iterator[Batch]:
        """Yield the minibatches of a split (shuffled for "train" when a generator is given)."""

    @abc.abstractmethod
    def loss(self, output: Tensor, batch: Batch) -> Tensor:
        """Training loss (a scalar) from the net's output ``[B, T, C]``."""

    @abc.abstractmethod
    def score(self, probs: Tensor, batch: Batch) -> dict[str, float]:
        """Sums for the metrics (e.g. correct, count, nll) from predictions ``[B, T, C]``
        (class probabilities, or raw outputs for regression tasks)."""

    @abc.abstractmethod
    def finalize(self, sums: dict[str, float]) -> dict[str, float]:
        """Turn summed :meth:`score` values into metrics (must include ``self.metric``)."""


TASKS: Registry[type[Task]] = Registry("task", entry_points="memloss.tasks")


def make_task(name: str, **params: object) -> Task:
    """Build a registered task, e.g. ``make_task("temporal-order", length=30)``."""
    return TASKS.get(name)(**params)  # type: ignore[call-arg]


def list_tasks() -> list[str]:
    return TASKS.list()
