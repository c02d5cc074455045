"""Synthetic tasks: the generated data follows each task's definition, splits are fixed by
the seed, and losses / metrics behave on known predictions."""
from __future__ import annotations

import math

import pytest
import torch

from memloss.tasks import Batch, make_task
from memloss.tasks.synthetic import Adding, Copy, TemporalOrder


def _ids(x: torch.Tensor) -> torch.Tensor:
    return x.argmax(-1)


@pytest.mark.parametrize("length,T", [("short", 15), ("medium", 30), (7, 7), (20, 20)])
def test_temporal_order_definition(length, T):
    task = TemporalOrder(length=length, train_size=300, valid_size=10, test_size=10, seed=3)
    x, y, w = task.split("train")
    assert w is None and x.shape == (300, T, 4) and task.net_kwargs() == {"input_size": 4, "output_size": 4}
    assert torch.all(x.sum(-1) == 1)  # one-hot
    ids = _ids(x)
    relevant = ids < 2  # A=0, B=1
    assert torch.all(relevant.sum(1) == 2)
    a, b = T // 3, 2 * T // 3
    assert torch.all(relevant[:, :a].sum(1) == 1) and torch.all(relevant[:, a:b].sum(1) == 1)
    assert not relevant[:, b:].any()
    first = ids[:, :a][relevant[:, :a]]
    second = ids[:, a:b][relevant[:, a:b]]
    assert torch.equal(y, 2 * first + second)  # AA=0, AB=1, BA=2, BB=3
    assert set(y.tolist()) == {0, 1, 2, 3}


def test_temporal_order_paper_sizes_and_seed():
    task = TemporalOrder()
    assert (task.seq_len, task.train_size, task.test_size) == (15, 200 * 32, 10_000)
    a = TemporalOrder(train_size=64, valid_size=8, test_size=8, seed=1)
    b = TemporalOrder(train_size=64, valid_size=8, test_size=8, seed=1)
    c = TemporalOrder(train_size=64, valid_size=8, test_size=8, seed=2)
    assert torch.equal(a.split("train")[0], b.split("train")[0])
    assert not torch.equal(a.split("train")[0], c.split("train")[0])
    assert not torch.equal(a.split("train")[0][:8], a.split("test")[0])
    # changing one split's size leaves the others unchanged
    d = TemporalOrder(train_size=32, valid_size=8, test_size=8, seed=1)
    assert torch.equal(a.split("test")[0], d.split("test")[0])


def test_batches_cover_split_and_shuffle_only_train():
    task = TemporalOrder(train_size=70, valid_size=10, test_size=20)
    bs = list(task.batches("train", 32))
    assert [b.inputs.shape[0] for b in bs] == [32, 32, 6]
    assert torch.equal(torch.cat([b.targets for b in bs]), task.split("train")[1])
    g = torch.Generator().manual_seed(0)
    shuffled = torch.cat([b.targets for b in task.batches("train", 32, generator=g)])
    assert sorted(shuffled.tolist()) == sorted(task.split("train")[1].tolist())
    assert not torch.equal(shuffled, task.split("train")[1])
    test = torch.cat([b.targets for b in task.batches("test", 8, generator=g)])
    assert torch.equal(test, task.split("test")[1])


def test_temporal_order_loss_and_score():
    task = TemporalOrder(train_size=8, valid_size=8, test_size=8)
    x, y, _ = task.split("test")
    batch = Batch(x, y)
    out = torch.zeros(8, 15, 4)
    out[torch.arange(8), -1, y] = 10.0
    assert task.loss(out, batch) < 1e-3
    m = task.finalize(task.score(torch.softmax(out, -1), batch))
    assert m["accuracy"] == 1.0 and m["error"] == 0.0
    uniform = task.finalize(task.score(torch.full((8, 15, 4), 0.25), Batch(x, y)))
    assert math.isclose(uniform["loss"], math.log(4), rel_tol=1e-6)


def test_adding_definition():
    task = Adding(length=12, train_size=200, valid_size=5, test_size=5)
    x, y, w = task.split("train")
    assert x.shape == (200, 12, 2) and w is None and task.regression
    marks = x[..., 1]
    assert torch.all(marks.sum(1) == 2)
    assert torch.all(marks[:, :6].sum(1) == 1) and torch.all(marks[:, 6:].sum(1) == 1)
    assert torch.allclose(y, (x[..., 0] * marks).sum(1))
    assert x[..., 0].min() >= 0 and x[..., 0].max() < 1
    out = torch.zeros(200, 12, 1)
    out[:, -1, 0] = y
    b = Batch(x, y)
    assert task.loss(out, b) == 0 and task.finalize(task.score(out, b))["mse"] == 0
    out[:, -1, 0] = y + 0.5
    assert math.isclose(task.finalize(task.score(out, b))["mse"], 0.25, rel_tol=1e-5)


def test_copy_definition():
    task = Copy(delay=6, length=3, symbols=4, train_size=50, valid_size=5, test_size=5)
    x, y, w = task.split("train")
    T = 6 + 2 * 3
    assert x.shape == (50, T, 6) and y.shape == (50, T) and w.shape == (50, T)
    ids = _ids(x)
    data = ids[:, :3]
    assert data.min() >= 1 and data.max() <= 4
    assert torch.all(ids[:, 3:3 + 6 - 1] == 0) and torch.all(ids[:, 3 + 6 - 1] == 5)
    assert torch.all(ids[:, -3:] == 0)
    assert torch.equal(y[:, -3:], data) and torch.all(y[:, :-3] == 0)
    assert torch.all(w[:, -3:] == 1) and torch.all(w[:, :-3] == 0)
    assert task.net_kwargs() == {"input_size": 6, "output_size": 5}
    out = torch.zeros(50, T, 5)
    out.scatter_(-1, y.unsqueeze(-1), 10.0)
    b = Batch(x, y, w)
    assert task.loss(out, b) < 1e-3
    assert task.finalize(task.score(torch.softmax(out, -1), b))["accuracy"] == 1.0
    # the weights decide which steps count: wrong blanks do not matter with loss_on=recall
    out[:, :-3] = 0
    assert task.loss(out, b) < 1e-3
    all_steps = Copy(delay=6, length=3, symbols=4, train_size=50, loss_on="all")
    xa, ya, wa = all_steps.split("train")
    assert torch.all(wa == 1) and all_steps.loss(out, Batch(xa, ya, wa)) > 0.1


@pytest.mark.parametrize("name,params,message", [
    ("temporal-order", {"length": "long"}, "unknown length"),
    ("temporal-order", {"length": 5}, ">= 6"),
    ("temporal-order", {"train_size": 0}, "train_size"),
    ("temporal-order", {"seed": -1}, "seed"),
    ("adding", {"length": 1}, "length"),
    ("copy", {"delay": 0}, "delay"),
    ("copy", {"symbols": 1}, "symbols"),
    ("copy", {"loss_on": "some"}, "loss_on"),
])
def test_bad_parameters(name, params, message):
    with pytest.raises(ValueError, match=message):
        make_task(name, **params)


def test_bad_split_and_batch_size():
    task = TemporalOrder(train_size=8, valid_size=8, test_size=8)
    with pytest.raises(ValueError, match="unknown split"):
        task.split("dev")
    with pytest.raises(ValueError, match="batch_size"):
        next(task.batches("train", 0))
