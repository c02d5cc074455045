"""Probes on models trained outside memloss: torch.nn modules converted with their weights,
the user's own tensors as data, and the one entry point :func:`memloss.probing.probe`."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from memloss.diagnostics import PROBES
from memloss.diagnostics.external import TensorTask, max_output_gap, net_from_torch
from memloss.models import Recurrent
from memloss.probing import probe
from memloss.tasks import evaluate

TINY = {name: PROBES.get(name).tiny() for name in PROBES.list()}


@pytest.mark.parametrize("module,cell", [
    (lambda: nn.LSTM(4, 5, num_layers=2, batch_first=True), "lstm"),
    (lambda: nn.GRU(4, 5, num_layers=2, batch_first=True, bias=False), "gru"),
    (lambda: nn.RNN(4, 5, nonlinearity="relu", batch_first=True), "rnn"),
    (lambda: Recurrent("gru", 4, 5, 2, batch_first=True), "gru"),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_converted_modules_compute_what_the_originals_do(module, cell, dtype):
    torch.manual_seed(0)
    rnn, emb, head = module().to(dtype), nn.Embedding(9, 4).to(dtype), nn.Linear(5, 3).to(dtype)
    net = net_from_torch(rnn, embedding=emb, head=head)
    assert net.config.cell == cell and next(net.parameters()).dtype == dtype
    assert net.config.nonlinearity == getattr(rnn, "nonlinearity", "tanh")
    x = torch.randint(0, 9, (3, 7))
    gap = max_output_gap(net, lambda x: head(rnn(emb(x))[0]), x)
    assert gap <= (1e-12 if dtype == torch.float64 else 1e-5)
    floats = net_from_torch(rnn, head=head)
    xf = torch.randn(3, 7, 4, dtype=dtype)
    assert max_output_gap(floats, lambda x: head(rnn(x)[0]), xf) <= 1e-5


def test_what_a_converted_net_cannot_hold_is_refused():
    with pytest.raises(ValueError, match="bidirectional or projected"):
        net_from_torch(nn.LSTM(3, 4, bidirectional=True))
    with pytest.raises(ValueError, match="bidirectional or projected"):
        net_from_torch(nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(ValueError, match="takes one of torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN"):
        net_from_torch(nn.Linear(3, 4))
    with pytest.raises(ValueError, match=r"must be \[vocab, 3\]"):
        net_from_torch(nn.LSTM(3, 4), embedding=nn.Embedding(5, 2))
    with pytest.raises(ValueError, match=r"must be \[classes, 4\]"):
        net_from_torch(nn.LSTM(3, 4), head=nn.Linear(5, 2))
    with pytest.raises(ValueError, match="head must be a torch.nn.Linear"):
        net_from_torch(nn.LSTM(3, 4), head=nn.Sequential(nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="needs the 'cell' site"):
        net_from_torch(nn.GRU(3, 4), scheme="moon:p=0.5")


def test_tensor_task_checks_its_tensors():
    x = torch.randint(0, 5, (4, 6))
    with pytest.raises(ValueError, match=r"targets must be \[B\] or \[B, T\]"):
        TensorTask(x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer token ids"):
        TensorTask(x.float(), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="regression"):
        TensorTask(x, torch.zeros(4))
    with pytest.raises(ValueError, match="bptt"):
        TensorTask(x, torch.zeros(4, dtype=torch.long), bptt=2)


def _lm_tensors(B=6, N=40, V=7):
    g = torch.Generator().manual_seed(1)
    stream = torch.randint(0, V, (B, N + 1), generator=g)
    return stream[:, :-1], stream[:, 1:]


def test_probe_a_torch_lstm_on_the_users_own_stream():
    """(c): an nn.LSTM LM with its embedding and head, trained with Zaremba dropout, probed on
    tensors read as a stream: every probe runs, and the sweep's metric is the evaluation's."""
    torch.manual_seed(0)
    rnn, emb, head = nn.LSTM(4, 6, num_layers=2, batch_first=True), nn.Embedding(7, 4), nn.Linear(6, 7)
    inputs, targets = _lm_tensors()
    data = TensorTask(inputs, targets, bptt=10)
    params = dict(TINY, **{"test-time-scaling": dict(TINY["test-time-scaling"], max_batches=100)})
    results = probe(rnn, data, embedding=emb, head=head, scheme="zaremba:p=0.3", params=params)
    assert set(results) == set(PROBES.list())
    assert set(results["state-decay"].frame["scheme"]) == {"zaremba:p=0.3,scaling=inverted"}
    net = net_from_torch(rnn, embedding=emb, head=head, scheme="zaremba:p=0.3")
    want = evaluate(net, data, mode="deterministic", batch_size=6)["accuracy"]
    got = results["test-time-scaling"].summary["table"]["test"]["deterministic"]
    assert list(got.values()) == [pytest.approx(want)]
    assert want == pytest.approx(evaluate(net, TensorTask(inputs, targets, bptt=40),
                                          batch_size=6)["accuracy"])  # carried: any segmentation


def test_probe_a_memloss_net_on_tensor_tuples(tmp_path):
    """(b): a memloss Net and a tuple (inputs, targets); results written when asked."""
    torch.manual_seed(0)
    net = net_from_torch(nn.GRU(3, 5, batch_first=True), head=nn.Linear(5, 2), scheme="gal:p=0.2")
    x, y = torch.randn(8, 6, 3), torch.randint(0, 2, (8,))
    results = probe(net, (x, y), ["uncertainty", "mask-audit"], out_dir=tmp_path / "d",
                    params={"uncertainty": TINY["uncertainty"], "mask-audit": TINY["mask-audit"]})
    assert (tmp_path / "d" / "uncertainty.csv").is_file() and (tmp_path / "d" / "mask-audit.json").is_file()
    assert results["mask-audit"].summary["mismatches"] == []
    with pytest.raises(ValueError, match="needs data"):
        probe(net)
    with pytest.raises(ValueError, match="has its own embedding"):
        probe(net, (x, y), scheme="zaremba")
    with pytest.raises(ValueError, match="tuple \\(inputs, targets"):
        probe(net, [1, 2])


def test_probe_a_run_directory(tmp_path):
    """(a): a run directory; results go to its diagnostics folder."""
    from memloss.training import TrainConfig, train

    cfg = TrainConfig(task="temporal-order", task_params={"length": 6, "train_size": 16,
                                                          "valid_size": 8, "test_size": 16},
                      epochs=1, batch_size=8, progress=False,
                      net=dict(hidden_size=4, scheme="semeniuta:p=0.2"))
    run = train(cfg, tmp_path / "run").path
    results = probe(run, names=["retention"], params={"retention": TINY["retention"]})
    assert (run / "diagnostics" / "retention.csv").is_file() and "retention" in results
    with pytest.raises(ValueError, match="a run directory records its own"):
        probe(run, scheme="zaremba")
