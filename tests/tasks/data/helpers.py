"""Shared checks for the real-data task tests: shapes, and a few optimiser steps on a tiny Net."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from memloss.models import Net, NetConfig
from memloss.tasks import Batch, Task

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def tiny_net(task: Task, seed: int = 0, **kw) -> Net:
    torch.manual_seed(seed)
    return Net(NetConfig(hidden_size=8, **task.net_kwargs(), **kw))


def predictions(task: Task, net: Net, batch: Batch) -> torch.Tensor:
    if getattr(task, "regression", False):
        with torch.no_grad():
            return net(batch.inputs, stochastic=False, lengths=batch.lengths)[0]
    return net.predict_proba(batch.inputs, lengths=batch.lengths)


def check_steps(task: Task, batch: Batch, steps: int = 5) -> dict[str, float]:
    """Loss is a finite scalar with gradients everywhere; a few Adam steps on one batch lower
    it; score/finalize give the task's metric."""
    net = tiny_net(task)
    out, _ = net(batch.inputs, lengths=batch.lengths)
    assert out.shape[:2] == batch.inputs.shape[:2]
    assert out.shape[-1] == task.net_kwargs()["output_size"]
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    losses = []
    for _ in range(steps + 1):
        opt.zero_grad()
        loss = task.loss(net(batch.inputs, lengths=batch.lengths)[0], batch)
        assert loss.dim() == 0 and math.isfinite(loss.item())
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all()
                   for p in net.parameters() if p.requires_grad and p is not getattr(
                       getattr(net, "embedding", None), "weight", None))
        losses.append(loss.item())
        opt.step()
    assert losses[-1] < losses[0], losses
    sums = task.score(predictions(task, net, batch), batch)
    metrics = task.finalize(sums)
    assert task.metric in metrics and math.isfinite(metrics[task.metric])
    return metrics


#: task parameters that point each real-data task at the committed fixtures (tiny runs)
FIXTURE_PARAMS: dict[str, dict] = {
    "seq-mnist": {"root": str(FIXTURES / "mnist"), "valid_size": 4, "pixels_per_step": 16},
    "permuted-mnist": {"root": str(FIXTURES / "mnist"), "valid_size": 4, "pixels_per_step": 16},
    "ptb-word": {"root": str(FIXTURES / "ptb"), "bptt": 10},
    "ptb-char": {"root": str(FIXTURES / "ptb"), "bptt": 20},
    "text-word": {"root": str(FIXTURES / "text"), "bptt": 10},
    "text-char": {"root": str(FIXTURES / "text"), "bptt": 20},
    "conll-ner": {"root": str(FIXTURES / "conll"), "vectors": str(FIXTURES / "vectors.txt")},
    "sentiment": {"root": str(FIXTURES / "semeval")},
    "sentiment-pang-lee": {"source": "pang-lee", "root": str(FIXTURES / "pang-lee"),
                           "segment_length": 5, "valid_fraction": 0.2, "test_fraction": 0.2},
}
