"""gradient-flow: a linear recurrence with known gradients; Jacobian norms vs dense ones."""
from __future__ import annotations

import math

import pytest
import torch

from memloss.diagnostics.gradient_flow import GradientFlow, step_jacobian_norm
from memloss.models.inference import expected_masks, mode_masks
from memloss.diagnostics.unroll import split_state
from memloss.models import Net, NetConfig

from .toys import LinearTask, TokenTask, net

T, H, A = 7, 3, 0.8


def _linear_rnn() -> Net:
    """relu RNN with W_hh = A*I, positive W_ih, zero biases: on positive input h_t is linear,
    h_t = A h_{t-1} + W x_t, so dL/dh_t = A^(T-1-t) dL/dh_{T-1} for a last-step loss."""
    n = Net(NetConfig(cell="rnn", nonlinearity="relu", hidden_size=H, input_size=3, output_size=2,
                      path="reference"))
    with torch.no_grad():
        for p in n.parameters():
            p.zero_()
        n.rnn.weight_hh_l0.copy_(A * torch.eye(H))
        n.rnn.weight_ih_l0.fill_(0.5)
        n.head.weight[0] = torch.tensor([1.0, 2.0, 2.0])
    return n


def _values(frame, q, loss, mode="deterministic"):
    sel = frame[(frame.quantity == q) & (frame["loss"] == loss) & (frame["mode"] == mode)]
    return sel.sort_values("t")["value"].to_numpy()


def test_gradient_of_a_linear_recurrence():
    B = 4
    r = GradientFlow(samples=1, batch_size=B, jacobian_stride=0, modes=("deterministic",))(
        _linear_rnn(), LinearTask(length=T, size=B))
    # loss = mean_b y_{T-1,0}: dL/dh_t[b] = A^(T-1-t) w / B, Frobenius norm over B rows
    w = 3.0  # ||(1, 2, 2)||
    last = _values(r.frame, "grad_h", "last")
    assert last == pytest.approx([A ** (T - 1 - t) * w / math.sqrt(B) for t in range(T)], rel=1e-5)
    slope = r.summary["log_slope"]["deterministic"]["last/grad_h"]
    assert slope == pytest.approx(-math.log(A), rel=1e-5)
    # per-step: sum over s >= t of the step-s loss, each reading y_s
    per = _values(r.frame, "grad_h", "per-step")
    want = [sum(A ** (s - t) for s in range(t, T)) * w / math.sqrt(B) for t in range(T)]
    assert per == pytest.approx(want, rel=1e-5)
    assert "grad_c" not in set(r.frame.quantity)


def test_jacobian_norm_of_the_linear_recurrence_is_a():
    r = GradientFlow(samples=1, batch_size=4, modes=("deterministic",))(
        _linear_rnn(), LinearTask(length=5, size=4))
    jac = r.frame[r.frame.quantity == "jacobian_h"].sort_values("t")["value"].to_numpy()
    assert jac == pytest.approx([A] * 5, rel=1e-4)  # dh_t/dh_{t-1} = A I on positive input


@pytest.mark.parametrize("cell,scheme", [("lstm", "moon:p=0.4"), ("gru", "gal:p=0.3"),
                                         ("rnn", "semeniuta:p=0.2"), ("lstm", "zoneout:p_cell=0.3")])
@pytest.mark.parametrize("method", ["autograd", "func"])
def test_jacobian_spectral_norm_matches_a_dense_one(cell, scheme, method):
    n = net(cell, scheme, hidden=4, layers=2)
    B = 3
    x = torch.randn(B, 1, 3)
    masks = mode_masks(n, "train-mode", 1, B, generator=torch.Generator().manual_seed(0),
                       device=torch.device("cpu"))
    h0 = torch.randn(2, B, 4)
    c0 = torch.randn(2, B, 4)
    has_c = n.rnn.cell.has_cell

    def f(h):
        return (split_state(n, n(x, (h, c0) if has_c else h, masks=masks)[1])["h"],)

    est = step_jacobian_norm(f, (h0,), 60, torch.Generator().manual_seed(1), method)
    for b in range(B):
        def fb(hb, b=b):
            h = h0.clone()
            h[:, b] = hb
            return f(h)[0][:, b]
        J = torch.autograd.functional.jacobian(fb, h0[:, b]).reshape(8, 8)
        assert est[b].item() == pytest.approx(torch.linalg.matrix_norm(J, ord=2).item(), rel=1e-3)


def test_lstm_full_state_jacobian_matches_dense():
    n = net("lstm", "semeniuta:p=0.3", hidden=4)
    x, B = torch.randn(2, 1, 3), 2
    m = expected_masks(n)
    h0, c0 = torch.randn(1, B, 4), torch.randn(1, B, 4)

    def f(h, c):
        new = split_state(n, n(x, (h, c), masks=m)[1])
        return new["h"], new["c"]

    est = step_jacobian_norm(f, (h0, c0), 80, torch.Generator().manual_seed(0))
    for b in range(B):
        def fb(s, b=b):
            h, c = h0.clone(), c0.clone()
            h[0, b], c[0, b] = s[:4], s[4:]
            hn, cn = f(h, c)
            return torch.cat([hn[0, b], cn[0, b]])
        J = torch.autograd.functional.jacobian(fb, torch.cat([h0[0, b], c0[0, b]]))
        assert est[b].item() == pytest.approx(torch.linalg.matrix_norm(J, ord=2).item(), rel=1e-3)


def test_per_step_targets_with_weights_and_lstm_columns():
    n = net("lstm", "gal:p_embedding=0.1", task=TokenTask())
    r = GradientFlow(samples=2, batch_size=8, power_iters=3)(n, TokenTask(length=5))
    f = r.frame
    assert {"grad_h", "grad_c", "jacobian_h", "jacobian_state",
            "grad_h_log_slope"} <= set(f.quantity)
    assert set(f["loss"].dropna()) == {"last", "per-step"}
    grads = f[f.quantity.isin(["grad_h", "grad_c"])]
    assert grads["value"].notna().all() and (grads["value"] >= 0).all()


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="power_iters"):
        GradientFlow(power_iters=0)
    with pytest.raises(ValueError, match="jvp"):
        GradientFlow(jvp="dense")
    with pytest.raises(ValueError, match="method"):
        step_jacobian_norm(lambda h: (h,), (torch.zeros(1, 1, 1),), 1, torch.Generator(), "x")
