"""Synthetic long-memory tasks: temporal order (Semeniuta 4.1), adding and copy.

Each task generates fixed train / valid / test sets from its ``seed`` (one generator per
split, so changing a split's size leaves the others unchanged) and serves them as
:class:`~memloss.tasks.base.Batch` es. Inputs are one-hot or real-valued floats ``[B, T, F]``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from memloss.core import validate
from .base import SPLITS, TASKS, Batch, Task

__all__ = ["TemporalOrder", "Adding", "Copy", "TEMPORAL_ORDER_LENGTHS"]

#: named lengths of the temporal order task (Semeniuta 4.1)
TEMPORAL_ORDER_LENGTHS = {"short": 15, "medium": 30}

_SPLIT_SEED = {"train": 0, "valid": 1, "test": 2}


def _split_generator(seed: int, split: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + _SPLIT_SEED[split])


@dataclass(frozen=True)
class _Generated(Task):
    """Shared machinery: fixed splits generated once from ``seed``, batching, checks."""

    train_size: int = 6400
    valid_size: int = 1000
    test_size: int = 10000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("train_size", "valid_size", "test_size"):
            validate.integer(self.name, name, getattr(self, name))
        validate.integer(self.name, "seed", self.seed, minimum=0)

    def _generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor | None]:
        raise NotImplementedError

    @cached_property
    def _data(self) -> dict[str, tuple[Tensor, Tensor, Tensor | None]]:
        sizes = {"train": self.train_size, "valid": self.valid_size, "test": self.test_size}
        return {s: self._generate(sizes[s], _split_generator(self.seed, s)) for s in SPLITS}

    def split(self, split: str) -> tuple[Tensor, Tensor, Tensor | None]:
        """The whole split as ``(inputs, targets, weights)``."""
        if split not in SPLITS:
            raise ValueError(f"{self.name}: unknown split {split!r}; valid: {', '.join(SPLITS)}")
        return self._data[split]

    def batches(self, split: str, batch_size: int, *, generator: torch.Generator | None = None
                ) -> Iterator[Batch]:
        validate.integer(self.name, "batch_size", batch_size)
        x, y, w = self.split(split)
        n = x.shape[0]
        order = (torch.randperm(n, generator=generator) if split == "train" and generator is not None
                 else torch.arange(n))
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            yield Batch(x[idx], y[idx], None if w is None else w[idx])

    @classmethod
    def param_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def _last_step_ce(output: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(output[:, -1], targets)


def _classification_sums(probs: Tensor, targets: Tensor) -> dict[str, float]:
    p = probs.clamp_min(1e-12)
    return {
        "correct": float((p.argmax(-1) == targets).sum()),
        "nll": float(-torch.log(p.gather(-1, targets.unsqueeze(-1))).sum()),
        "count": float(targets.numel()),
    }


def _classification_metrics(sums: dict[str, float]) -> dict[str, float]:
    n = sums.get("count", 0.0)
    if n <= 0:
        raise ValueError("no predictions were scored (empty split?)")
    return {"accuracy": sums["correct"] / n, "error": 1.0 - sums["correct"] / n,
            "loss": sums["nll"] / n}


@TASKS.register("temporal-order", "Semeniuta 4.1 temporal order: classify the order (AA, AB, "
                "BA, BB) of two symbols placed in the first and second thirds of a C/D sequence")
@dataclass(frozen=True)
class TemporalOrder(_Generated):
    """Temporal order (Hochreiter & Schmidhuber 1997, as in Semeniuta 4.1).

    Symbols A, B, C, D are one-hot ids 0..3. All elements but two are drawn uniformly from
    {C, D}; one symbol from {A, B} is placed uniformly in the first third of the sequence
    and one in the second third (thirds split at ``T//3`` and ``2T//3``). The class is
    ``2*first + second`` (AA=0, AB=1, BA=2, BB=3), predicted after the last step.
    ``length``: ``"short"`` (15), ``"medium"`` (30) or any integer >= 6. The default
    training set is the paper's 200 minibatches x 32 and the test set 10k sequences.
    """

    name: ClassVar[str] = "temporal-order"
    length: int | str = "short"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.seq_len  # validates

    @property
    def seq_len(self) -> int:
        if isinstance(self.length, str):
            if self.length in TEMPORAL_ORDER_LENGTHS:
                return TEMPORAL_ORDER_LENGTHS[self.length]
            raise ValueError(f"temporal-order: unknown length {self.length!r}; use "
                             f"{', '.join(TEMPORAL_ORDER_LENGTHS)} or an integer >= 6")
        return validate.integer(self.name, "length", self.length, minimum=6)

    def net_kwargs(self) -> dict:
        return {"input_size": 4, "output_size": 4}

    def run_info(self) -> dict:
        """The sequence length, and the chance level (the four classes are equally likely:
        a uniform guess is right 25% of the time); the data are generated, no files read."""
        return {"seq_len": self.seq_len, "chance": 0.25, "data_root": None}

    @classmethod
    def tiny(cls, fixtures: Path) -> dict:
        return {"length": 8, "train_size": 96, "valid_size": 16, "test_size": 16}

    def _generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, None]:
        T = self.seq_len
        a, b = T // 3, 2 * T // 3
        ids = torch.randint(2, 4, (n, T), generator=generator)
        first = torch.randint(0, 2, (n,), generator=generator)
        second = torch.randint(0, 2, (n,), generator=generator)
        pos1 = torch.randint(0, a, (n,), generator=generator)
        pos2 = torch.randint(a, b, (n,), generator=generator)
        rows = torch.arange(n)
        ids[rows, pos1] = first
        ids[rows, pos2] = second
        return F.one_hot(ids, 4).float(), 2 * first + second, None

    def loss(self, output: Tensor, batch: Batch) -> Tensor:
        return _last_step_ce(output, batch.targets)

    def score(self, probs: Tensor, batch: Batch) -> dict[str, float]:
        return _classification_sums(probs[:, -1], batch.targets)

    def finalize(self, sums: dict[str, float]) -> dict[str, float]:
        return _classification_metrics(sums)


@TASKS.register("adding", "adding problem: regress the sum of the two marked numbers in a "
                "sequence of uniform [0, 1] values (MSE)")
@dataclass(frozen=True)
class Adding(_Generated):
    """The adding problem (Hochreiter & Schmidhuber 1997; form of Le et al. 2015).

    Input ``[B, T, 2]``: channel 0 holds values drawn from U[0, 1], channel 1 marks two
    positions with 1 (one in the first half ``[0, T//2)``, one in the second half). The
    target is the sum of the two marked values, read from the last step; the loss and
    headline metric are the mean squared error (always predicting 1 gives about 1/6).
    """

    name: ClassVar[str] = "adding"
    metric: ClassVar[str] = "mse"
    lower_is_better: ClassVar[bool] = True
    regression: ClassVar[bool] = True
    length: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        validate.integer(self.name, "length", self.length, minimum=2)

    def net_kwargs(self) -> dict:
        return {"input_size": 2, "output_size": 1}

    @classmethod
    def tiny(cls, fixtures: Path) -> dict:
        return {"length": 6, "train_size": 64, "valid_size": 8, "test_size": 8}

    def _generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, None]:
        T = self.length
        values = torch.rand(n, T, generator=generator)
        pos1 = torch.randint(0, T // 2, (n,), generator=generator)
        pos2 = torch.randint(T // 2, T, (n,), generator=generator)
        marks = torch.zeros(n, T)
        rows = torch.arange(n)
        marks[rows, pos1] = 1.0
        marks[rows, pos2] = 1.0
        target = values[rows, pos1] + values[rows, pos2]
        return torch.stack([values, marks], dim=-1), target, None

    def loss(self, output: Tensor, batch: Batch) -> Tensor:
        return F.mse_loss(output[:, -1, 0], batch.targets)

    def score(self, probs: Tensor, batch: Batch) -> dict[str, float]:
        err = probs[:, -1, 0] - batch.targets
        return {"sse": float((err ** 2).sum()), "count": float(err.numel())}

    def finalize(self, sums: dict[str, float]) -> dict[str, float]:
        n = sums.get("count", 0.0)
        if n <= 0:
            raise ValueError("no predictions were scored (empty split?)")
        return {"mse": sums["sse"] / n, "loss": sums["sse"] / n}


@TASKS.register("copy", "copy memory: reproduce a sequence of symbols after a delay of blanks "
                "(per-step targets, recall steps weighted)")
@dataclass(frozen=True)
class Copy(_Generated):
    """The copy memory task (Hochreiter & Schmidhuber 1997; form of Arjovsky et al. 2016).

    Token ids: 0 = blank, 1..``symbols`` = data, ``symbols + 1`` = delimiter (one-hot
    inputs of size ``symbols + 2``). The input is ``length`` random data symbols,
    ``delay - 1`` blanks, the delimiter, then ``length`` blanks (``T = delay + 2*length``).
    The target is blank everywhere except the last ``length`` steps, which repeat the data.
    ``weights`` are 1 on the recall steps only (``loss_on="recall"``, default) or on every
    step (``loss_on="all"``, the original objective); accuracy is over recall steps.
    """

    name: ClassVar[str] = "copy"
    target: ClassVar[str] = "every"
    delay: int = 50
    length: int = 10
    symbols: int = 8
    loss_on: str = "recall"

    def __post_init__(self) -> None:
        super().__post_init__()
        validate.integer(self.name, "delay", self.delay)
        validate.integer(self.name, "length", self.length)
        validate.integer(self.name, "symbols", self.symbols, minimum=2)
        if self.loss_on not in ("recall", "all"):
            raise ValueError(f"copy: loss_on must be 'recall' or 'all', got {self.loss_on!r}")

    @property
    def seq_len(self) -> int:
        return self.delay + 2 * self.length

    def net_kwargs(self) -> dict:
        return {"input_size": self.symbols + 2, "output_size": self.symbols + 1}

    @classmethod
    def tiny(cls, fixtures: Path) -> dict:
        return {"delay": 4, "length": 3, "train_size": 64, "valid_size": 8, "test_size": 8}

    def _generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        S, T = self.length, self.seq_len
        data = torch.randint(1, self.symbols + 1, (n, S), generator=generator)
        ids = torch.zeros(n, T, dtype=torch.long)
        ids[:, :S] = data
        ids[:, S + self.delay - 1] = self.symbols + 1
        targets = torch.zeros(n, T, dtype=torch.long)
        targets[:, T - S:] = data
        recall = torch.zeros(n, T)
        recall[:, T - S:] = 1.0
        weights = recall if self.loss_on == "recall" else torch.ones(n, T)
        return F.one_hot(ids, self.symbols + 2).float(), targets, weights

    def loss(self, output: Tensor, batch: Batch) -> Tensor:
        ce = F.cross_entropy(output.flatten(0, 1), batch.targets.flatten(), reduction="none")
        w = batch.weights.flatten()
        return (ce * w).sum() / w.sum()

    def score(self, probs: Tensor, batch: Batch) -> dict[str, float]:
        S = self.length
        return _classification_sums(probs[:, -S:], batch.targets[:, -S:])

    def finalize(self, sums: dict[str, float]) -> dict[str, float]:
        return _classification_metrics(sums)
