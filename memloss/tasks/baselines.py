"""The trivial baseline of a task's data: what a model has to beat before its ranking of
regularizers says anything (a network that scores worse has not learnt even the frequencies).

* Language models: the **unigram model** of the training split with add-one (Laplace)
  smoothing over the task's own vocabulary (its tokenisation, ``max_vocab`` cap and
  ``<unk>``, ``train_tokens`` slice), ``p(w) = (c(w) + 1) / (N + V)`` with ``c(w)`` the
  count of token ``w`` among the ``N`` training tokens and ``V`` the vocabulary size. It is
  scored on the tokens a language model predicts: every token of the split but the first.
  Perplexity ``exp(mean NLL)`` for words, bits per character ``mean NLL / ln 2`` for
  characters.
* Classifiers: the **majority class** of the training split's targets, scored on the split
  (accuracy, and error = 1 - accuracy); per-step targets count where their weight is 1.

:func:`baseline` picks the one that fits the task.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import torch

from .base import SPLITS, Task

__all__ = ["Baseline", "unigram", "majority", "baseline"]

#: batch size for reading a classifier's targets (only the targets are kept)
_READ_BATCH = 1024


@dataclass(frozen=True)
class Baseline:
    """A trivial model's score on one split, in the task's metric.

    ``kind``: ``"unigram"`` or ``"majority"``. ``symbols``: the vocabulary size (unigram)
    or the number of classes seen in training (majority). ``train_count``: training tokens
    or targets counted; ``scored``: tokens or targets of ``split`` scored.
    """

    kind: str
    task: str
    split: str
    metric: str
    value: float
    symbols: int
    train_count: int
    scored: int

    def describe(self) -> str:
        what = (f"unigram model (add-one smoothing, {self.symbols}-symbol vocabulary, "
                f"{self.train_count} training tokens)" if self.kind == "unigram" else
                f"majority class of {self.train_count} training targets ({self.symbols} classes)")
        return (f"{self.task}: {what}: {self.split} {self.metric} {self.value:.4g} "
                f"({self.scored} scored)")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "task": self.task, "split": self.split,
                "metric": self.metric, "value": self.value, "symbols": self.symbols,
                "train_count": self.train_count, "scored": self.scored}


def _check_split(split: str) -> None:
    if split not in SPLITS or split == "train":
        raise ValueError(f"a baseline is scored on valid or test (fitted on train), got "
                         f"split {split!r}")


def _is_language_model(task: Task) -> bool:
    return task.target == "every" and hasattr(task, "corpus") and hasattr(task, "unit")


def unigram(task: Task, split: str = "test") -> Baseline:
    """The add-one-smoothed unigram model of ``task``'s training split, scored on ``split``
    (see the module doc)."""
    _check_split(split)
    if not _is_language_model(task):
        raise ValueError(f"task {task.name!r} is not a language model; the unigram baseline "
                         "needs one (use majority() for a classifier)")
    corpus = task.corpus  # type: ignore[attr-defined]
    size = len(corpus.vocab)
    train = corpus["train"]
    counts = torch.bincount(train, minlength=size).double()
    logp = ((counts + 1.0) / (float(train.numel()) + size)).log()
    targets = corpus[split][1:]
    nll = float(-logp[targets].mean())
    unit = task.unit  # type: ignore[attr-defined]
    value = math.exp(nll) if unit == "word" else nll / math.log(2)
    return Baseline("unigram", task.name, split, task.metric, value, size,
                    int(train.numel()), int(targets.numel()))


def _targets(task: Task, split: str) -> list[int]:
    out: list[int] = []
    for batch in task.batches(split, _READ_BATCH):
        t = batch.targets
        if batch.weights is not None and t.dim() == batch.weights.dim():
            t = t[batch.weights > 0]
        out.extend(int(v) for v in t.reshape(-1).tolist())
    return out


def majority(task: Task, split: str = "test") -> Baseline:
    """Always the most frequent training class (ties: the smallest label), scored on
    ``split`` in the task's metric (``accuracy`` or ``error``)."""
    _check_split(split)
    if task.regression or task.metric not in ("accuracy", "error"):
        raise ValueError(f"task {task.name!r} scores {task.metric!r}; the majority baseline "
                         "gives accuracy or error of a classifier")
    counts = Counter(_targets(task, "train"))
    if not counts:
        raise ValueError(f"task {task.name!r} has no training targets")
    top = max(counts.values())
    label = min(k for k, v in counts.items() if v == top)
    scored = _targets(task, split)
    if not scored:
        raise ValueError(f"task {task.name!r} has no {split} targets")
    accuracy = sum(t == label for t in scored) / len(scored)
    value = accuracy if task.metric == "accuracy" else 1.0 - accuracy
    return Baseline("majority", task.name, split, task.metric, value, len(counts),
                    sum(counts.values()), len(scored))


def baseline(task: Task, split: str = "test") -> Baseline:
    """The unigram model for a language model, else the majority class."""
    return unigram(task, split) if _is_language_model(task) else majority(task, split)
