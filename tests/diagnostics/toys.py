"""Tiny tasks and hand-set nets for the probe tests."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from memloss.models import Net, NetConfig
from memloss.tasks import Batch, Task


@dataclass(frozen=True)
class FloatTask(Task):
    """Float features ``[B, T, F]``; label = sign of the first feature at step 0."""

    name: ClassVar[str] = "toy-float"
    length: int = 8
    features: int = 3
    classes: int = 2
    size: int = 64
    positive: bool = False
    double: bool = False  # float64 inputs

    def net_kwargs(self) -> dict:
        return {"input_size": self.features, "output_size": self.classes}

    def batches(self, split, batch_size, *, generator=None):
        g = torch.Generator().manual_seed({"train": 0, "valid": 1, "test": 2}[split])
        x = torch.randn(self.size, self.length, self.features, generator=g)
        if self.positive:
            x = x.abs()
        if self.double:
            x = x.double()
        y = (x[:, 0, 0] > x[:, 0, 0].median()).long() % self.classes
        for s in range(0, self.size, batch_size):
            yield Batch(x[s:s + batch_size], y[s:s + batch_size])

    def loss(self, output, batch):
        return F.cross_entropy(output[:, -1], batch.targets)

    def score(self, probs, batch):
        return {"correct": float((probs[:, -1].argmax(-1) == batch.targets).sum()),
                "count": float(len(batch.targets))}

    def finalize(self, sums):
        return {"accuracy": sums["correct"] / sums["count"]}


@dataclass(frozen=True)
class TokenTask(FloatTask):
    """Token ids ``[B, T]``, per-step targets (the previous token) with weights."""

    name: ClassVar[str] = "toy-tokens"
    target: ClassVar[str] = "every"
    vocab: int = 5

    def net_kwargs(self) -> dict:
        return {"vocab_size": self.vocab, "output_size": self.vocab}

    def batches(self, split, batch_size, *, generator=None):
        g = torch.Generator().manual_seed(7)
        x = torch.randint(0, self.vocab, (self.size, self.length), generator=g)
        y = torch.roll(x, 1, dims=1)
        w = torch.ones(self.size, self.length)
        w[:, 0] = 0
        for s in range(0, self.size, batch_size):
            yield Batch(x[s:s + batch_size], y[s:s + batch_size], w[s:s + batch_size])

    def loss(self, output, batch):
        ce = F.cross_entropy(output.flatten(0, 1), batch.targets.flatten(), reduction="none")
        w = batch.weights.flatten()
        return (ce * w).sum() / w.sum()

    def score(self, probs, batch):
        ok = (probs.argmax(-1) == batch.targets).float() * batch.weights
        return {"correct": float(ok.sum()), "count": float(batch.weights.sum())}


@dataclass(frozen=True)
class LinearTask(FloatTask):
    """Regression-like: the loss is the mean of output unit 0 at the last step (linear)."""

    name: ClassVar[str] = "toy-linear"
    regression: ClassVar[bool] = True
    positive: bool = True

    def loss(self, output, batch):
        return output[:, -1, 0].mean()


def net(cell: str = "lstm", scheme: str = "none", hidden: int = 6, layers: int = 1,
        task: Task | None = None, **kw) -> Net:
    task = task or FloatTask()
    torch.manual_seed(0)
    return Net(NetConfig(cell=cell, hidden_size=hidden, num_layers=layers, scheme=scheme,
                         path="reference", **task.net_kwargs(), **kw))


def open_gate_lstm(scheme: str, hidden: int = 6, g_bias: float = 0.0, features: int = 3) -> Net:
    """An LSTM with zero weights and input/forget/output gates forced to 1 (bias 30), so
    ``c_t = c_{t-1} + g`` with ``g = tanh(g_bias)`` apart from the masks."""
    n = Net(NetConfig(cell="lstm", hidden_size=hidden, scheme=scheme, input_size=features,
                      output_size=2, path="reference"))
    H = hidden
    with torch.no_grad():
        for p in n.rnn.parameters():
            p.zero_()
        b = n.rnn.bias_ih_l0
        b[0:2 * H] = 30.0       # i, f
        b[2 * H:3 * H] = g_bias  # g
        b[3 * H:4 * H] = 30.0   # o
    return n
