"""retention: a net that stores x_t and x_{t-1} verbatim has capacity 1 at lags 0 and 1."""
from __future__ import annotations

import pytest
import torch

from memloss.diagnostics.retention import Retention, ridge_fit, squared_correlation
from memloss.models import Net, NetConfig

from .toys import FloatTask, TokenTask, net


def _delay_line(F: int = 3) -> Net:
    """relu RNN, h_t = [x_t, x_{t-1}] for positive x (W_ih = [I; 0], W_hh shifts)."""
    n = Net(NetConfig(cell="rnn", nonlinearity="relu", hidden_size=2 * F, input_size=F,
                      output_size=2, path="reference"))
    with torch.no_grad():
        for p in n.parameters():
            p.zero_()
        n.rnn.weight_ih_l0[:F] = torch.eye(F)
        n.rnn.weight_hh_l0[F:, :F] = torch.eye(F)
    return n


def test_delay_line_capacity():
    r = Retention(max_lag=3, batch_size=64, alpha=1e-8, modes=("deterministic",))(
        _delay_line(), FloatTask(length=10, size=64, positive=True))
    cap = r.frame[r.frame.quantity == "capacity"].sort_values("lag")["value"].to_numpy()
    assert cap[:2] == pytest.approx([1.0, 1.0], abs=1e-6)
    assert (cap[2:] < 0.1).all()
    assert r.summary["memory_capacity"]["deterministic"] == pytest.approx(cap.sum())
    assert r.summary["categorical"] is False


def test_ridge_recovers_a_linear_map_and_correlation_is_one():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 4, generator=g)
    W = torch.randn(4, 2, generator=g)
    Y = X @ W + 3.0
    Wf, b = ridge_fit(X, Y, 1e-10)
    torch.testing.assert_close(Wf.float(), W, atol=1e-4, rtol=1e-4)
    assert b.float() == pytest.approx(torch.full((2,), 3.0), abs=1e-4)
    r2 = squared_correlation(X.double() @ Wf + b, Y.double())
    assert r2.tolist() == pytest.approx([1.0, 1.0])
    assert torch.isnan(squared_correlation(torch.ones(5, 1), torch.randn(5, 1))).all()


def test_token_input_reports_accuracy_and_chance():
    n = net("gru", "semeniuta", hidden=8, task=TokenTask())
    r = Retention(max_lag=2, batch_size=32)(n, TokenTask(length=6, size=32))
    q = set(r.frame.quantity)
    assert {"capacity", "accuracy", "chance", "memory_capacity"} <= q
    acc = r.frame[r.frame.quantity == "accuracy"]["value"]
    assert ((acc >= 0) & (acc <= 1)).all()
    assert r.summary["categorical"] is True


def test_bad_input_raises():
    with pytest.raises(ValueError, match="layer=3"):
        Retention(layer=3)(net(), FloatTask())
    with pytest.raises(ValueError, match="at least 4"):
        Retention(batch_size=4)(net(), FloatTask(size=3))
    with pytest.raises(ValueError, match="alpha"):
        Retention(alpha=0)
