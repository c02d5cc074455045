"""Every probe quantity against a case solved by hand (open gates, linear regimes, delay
lines, constant predictions). Quantities checked in other files:

* state-decay ``c_norm``, ``eq17``, ``eq19``, ``decay_rate``: test_state_decay.py;
* impulse ``delta_c``, ``delta_c_half_life``: test_impulse.py;
* gradient-flow ``grad_h``/``grad_c`` and their carried parts: test_defects.py,
  ``grad_h_log_slope``, ``jacobian_h`` (= A): test_gradient_flow.py;
* saturation LSTM gates and histograms: test_saturation.py;
* retention ``capacity``, ``memory_capacity``: test_retention.py;
* uncertainty ``ece`` on constructed bins: test_uncertainty.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from memloss.diagnostics.fit import half_life, log_slope
from memloss.diagnostics.gradient_flow import GradientFlow
from memloss.diagnostics.impulse import Impulse
from memloss.diagnostics.retention import Retention
from memloss.diagnostics.saturation import Saturation
from memloss.diagnostics.state_decay import StateDecay
from memloss.diagnostics.test_time_scaling import TestTimeScaling
from memloss.diagnostics.uncertainty import Uncertainty
from memloss.models import Net, NetConfig

from .test_defects import linear_two_layer
from .toys import FloatTask, LinearTask, TokenTask, net, open_gate_lstm

T = 6


def _rows(frame, quantity, mode="deterministic", **eq):
    sel = frame[(frame.quantity == quantity) & (frame["mode"] == mode)]
    for k, v in eq.items():
        sel = sel[sel[k] == v]
    return sel.sort_values("t")["value"].to_numpy() if "t" in sel else sel["value"].to_numpy()


# --- state-decay ---------------------------------------------------------------------------
def test_h_norm_is_tanh_of_the_growing_cell():
    """Open gates, c_0 = 0, update dropout (expectation, factor q): c_t = (t+1) q g per unit,
    h_t = tanh(c_t), so h_norm = sqrt(H) tanh((t+1) q g)."""
    q, g, H = 0.75, math.tanh(0.5), 6
    r = StateDecay(samples=1, modes=("deterministic",))(
        open_gate_lstm("semeniuta:p=0.25,scaling=expectation", H, 0.5).double(),
        FloatTask(length=T, double=True))
    assert _rows(r.frame, "h_norm") == pytest.approx(
        [math.sqrt(H) * math.tanh((t + 1) * q * g) for t in range(T)], rel=1e-12)
    assert (r.frame[r.frame["mode"] == "deterministic"]["std"].dropna() == 0).all()


def test_ratios_to_training_mode_follow_the_kept_units():
    """Per-sequence update masks (expectation): in training mode c_t = (t+1) g m with m in
    {0, 1}, ||c_t|| = (t+1) g sqrt(k) for k kept units; deterministically (t+1) q g sqrt(H).
    c_ratio = q sqrt(H) / mean sqrt(k), h_ratio = sqrt(H) tanh((t+1) q g) / (tanh((t+1) g)
    mean sqrt(k)), with the means over the K draws and the batch the probe made."""
    q, g, H, K, B = 0.5, math.tanh(0.5), 6, 3, 8
    n = open_gate_lstm("semeniuta:p=0.5,sampling=sequence,scaling=expectation", H, 0.5).double()
    r = StateDecay(samples=K, batch_size=B)(n, FloatTask(length=T, double=True),
                                            generator=torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)  # the probe's draws, in its order
    kept = torch.stack([n.mask_plan().sample(T, B, generator=gen, dtype=torch.float64)
                        ["l0.update"].sum(-1) for _ in range(K)])
    root = float(kept.sqrt().mean())
    assert _rows(r.frame, "c_ratio") == pytest.approx([q * math.sqrt(H) / root] * T, rel=1e-10)
    assert _rows(r.frame, "h_ratio") == pytest.approx(
        [math.sqrt(H) * math.tanh((t + 1) * q * g) / (math.tanh((t + 1) * g) * root)
         for t in range(T)], rel=1e-10)
    assert _rows(r.frame, "c_norm", "train-mode") == pytest.approx(
        [(t + 1) * g * root for t in range(T)], rel=1e-10)
    s = r.summary
    assert s["final_norm"]["deterministic"] == pytest.approx(T * q * g * math.sqrt(H), rel=1e-10)
    assert s["final_ratio_to_train_mode"]["deterministic"] == pytest.approx(
        q * math.sqrt(H) / root, rel=1e-10)


@pytest.mark.parametrize("scaling", ["inverted", "expectation"])
def test_analytic_ratio_rows(scaling):
    """eq17_ratio (per sequence) = q^t and eq19_ratio = 1 under either convention."""
    q = 0.6
    r = StateDecay(samples=1, batch_size=4)(
        net("lstm", f"moon:p=0.4,sampling=sequence,scaling={scaling}"), FloatTask(length=T))
    assert _rows(r.frame, "eq17_ratio") == pytest.approx([q ** t for t in range(T)])
    assert r.summary["analytic_final"]["eq17/deterministic"] == pytest.approx(
        1.0 if scaling == "inverted" else q ** T)
    r = StateDecay(samples=1, batch_size=4)(
        net("gru", f"semeniuta:p=0.4,sampling=sequence,scaling={scaling}"), FloatTask(length=T))
    assert _rows(r.frame, "eq19_ratio") == pytest.approx([1.0] * T)
    assert _rows(r.frame, "eq19_ratio", "other-scaling") == pytest.approx(
        [q if scaling == "inverted" else 1 / q] * T)


# --- impulse -------------------------------------------------------------------------------
def test_delta_h_and_delta_output_of_a_one_unit_open_gate_lstm():
    """H = 1, open gates, g = 0, cell dropout (expectation, factor q): a state shift of eps
    (a unit direction is +-1) decays as c = q^k eps, h = tanh(c), y = W h, so
    delta_h = tanh(q^k eps) and delta_output = ||W|| tanh(q^k eps) for k >= 1."""
    q, eps, t0 = 0.5, 0.8, 1
    n = open_gate_lstm("moon:p=0.5,scaling=expectation", hidden=1).double()
    r = Impulse(perturb="state", t0=t0, eps=eps, samples=1, modes=("deterministic",))(
        n, FloatTask(length=T, double=True))
    k = range(1, T - t0)
    want_h = [eps] + [math.tanh(q ** j * eps) for j in k]
    assert _rows(r.frame, "delta_h") == pytest.approx(want_h, rel=1e-12)
    w = float(n.head.weight[:, 0].norm())
    assert _rows(r.frame, "delta_output")[1:] == pytest.approx(
        [w * math.tanh(q ** j * eps) for j in k], rel=1e-12)
    slope = log_slope(list(range(t0 + 1, T)), want_h[1:])
    assert r.summary["half_life"]["deterministic"]["delta_h"] == pytest.approx(half_life(slope))
    # delta_output is delta_h times ||W||: the same slope, the same half-life
    assert r.summary["half_life"]["deterministic"]["delta_output"] == pytest.approx(
        half_life(slope))


def test_input_impulse_through_a_linear_recurrence():
    """relu RNN with a large positive bias is linear: h_t = a h_{t-1} + w x_t + b; shifting
    x_t0 by eps u (|u| = 1) moves h_t by a^(t-t0) w eps u."""
    a, w, eps, t0 = 0.7, 0.5, 0.3, 2
    n = Net(NetConfig(cell="rnn", nonlinearity="relu", hidden_size=3, input_size=3,
                      output_size=2, path="reference")).double()
    with torch.no_grad():
        for p in n.rnn.parameters():
            p.zero_()
        n.rnn.weight_hh_l0.copy_(a * torch.eye(3, dtype=torch.float64))
        n.rnn.weight_ih_l0.copy_(w * torch.eye(3, dtype=torch.float64))
        n.rnn.bias_ih_l0.fill_(10.0)
    r = Impulse(t0=t0, eps=eps, samples=1, modes=("deterministic",))(
        n, FloatTask(length=T, double=True))
    assert _rows(r.frame, "delta_h") == pytest.approx(
        [a ** j * w * eps for j in range(T - t0)], rel=1e-12)
    assert r.summary["half_life"]["deterministic"]["delta_h"] == pytest.approx(
        math.log(2) / -math.log(a), rel=1e-9)


# --- gradient-flow -------------------------------------------------------------------------
def test_carried_gradient_log_slope():
    """Top layer of the linear 2-layer recurrence: carried part a^(T-1-t) n for t < T-1."""
    a = 0.8
    r = GradientFlow(samples=1, batch_size=4, jacobian_stride=0, modes=("deterministic",))(
        linear_two_layer(a), LinearTask(length=T, size=4))
    assert r.summary["log_slope"]["deterministic"]["last/grad_h_carried"] == pytest.approx(
        -math.log(a), rel=1e-5)
    assert r.summary["per_step_factor"]["deterministic"]["last/grad_h"] == pytest.approx(
        1 / a, rel=1e-5)


def test_jacobians_of_an_open_gate_lstm():
    """Zero weights, open gates: c_t = c_{t-1} + g, h_t = tanh(c_t). dh_t/dh_{t-1} = 0 and the
    state map's Jacobian [[0, diag(sech^2 c_t)], [0, I]] has norm sqrt(1 + sech^4(c_t)),
    c_t = (t+1) tanh(0.5)."""
    g = math.tanh(0.5)
    r = GradientFlow(samples=1, batch_size=2, power_iters=30, modes=("deterministic",))(
        open_gate_lstm("none", hidden=3, g_bias=0.5).double(), LinearTask(length=T, size=2))
    assert _rows(r.frame, "jacobian_h") == pytest.approx([0.0] * T, abs=1e-12)
    assert _rows(r.frame, "jacobian_state") == pytest.approx(
        [math.sqrt(1 + math.cosh((t + 1) * g) ** -4) for t in range(T)], rel=1e-9)


# --- test-time-scaling ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Readout(FloatTask):
    """Regression task whose metric is the mean of output unit 0 at the last step."""

    metric: ClassVar[str] = "readout"
    regression: ClassVar[bool] = True
    lower_is_better: ClassVar[bool] = False

    def score(self, probs, batch):
        return {"sum": float(probs[:, -1, 0].sum()), "n": float(len(batch.targets))}

    def finalize(self, sums):
        return {"readout": sums["sum"] / sums["n"]}


def test_test_time_scaling_of_the_eq17_sum():
    """Open gates, g = tanh(0.5), cell dropout (expectation, q): deterministically
    c_T = g sum_{i=1..T} q^i (eq. 17), under the other convention c_T = T g; the readout is
    w tanh(c_T) + b, at every length of the sweep."""
    q, g = 0.7, math.tanh(0.5)
    n = open_gate_lstm("moon:p=0.3,scaling=expectation", hidden=2, g_bias=0.5).double()
    r = TestTimeScaling(factors=(1.0, 3.0), samples=2, modes=("deterministic", "other-scaling"))(
        n, _Readout(length=4, double=True))
    w, b = float(n.head.weight[0].sum()), float(n.head.bias[0])
    table = r.summary["table"]["test"]
    for L in (4, 12):
        det = w * math.tanh(g * sum(q ** i for i in range(1, L + 1))) + b
        assert table["deterministic"][str(L)] == pytest.approx(det, rel=1e-12)
        assert table["other-scaling"][str(L)] == pytest.approx(w * math.tanh(L * g) + b, rel=1e-12)


# --- saturation ----------------------------------------------------------------------------
def test_gru_gates_and_tanh_rnn_activation_are_set_by_their_biases():
    """Zero weights: GRU r = sigmoid(b_r), z = sigmoid(b_z); tanh RNN h = tanh(b), judged as
    (h + 1)/2."""
    gru = net("gru", "none", hidden=4)
    with torch.no_grad():
        for p in gru.rnn.parameters():
            p.zero_()
        gru.rnn.bias_ih_l0[:4] = -30.0  # reset closed
        gru.rnn.bias_ih_l0[4:8] = 30.0  # update open
    r = Saturation(bins=10)(gru, FloatTask())
    f = r.frame
    by = f[f.quantity.isin(["left_saturated", "right_saturated"])].groupby(
        ["gate", "quantity"])["value"].agg(["min", "max"])
    assert tuple(by.loc[("reset", "left_saturated")]) == (1.0, 1.0)
    assert tuple(by.loc[("update", "right_saturated")]) == (1.0, 1.0)
    assert tuple(by.loc[("update", "left_saturated")]) == (0.0, 0.0)
    assert r.summary["retain_gate"] == "update" and r.summary["retain_gate_mean"] == 1.0
    rnn = net("rnn", "none", hidden=4)
    with torch.no_grad():
        for p in rnn.rnn.parameters():
            p.zero_()
        rnn.rnn.bias_ih_l0.fill_(0.5)
    f = Saturation(bins=10)(rnn, FloatTask()).frame
    hist = f[f.quantity == "gate_histogram"].sort_values("bin")
    level = (math.tanh(0.5) + 1) / 2  # 0.731 -> the bin centred at 0.75
    assert hist[hist["value"] > 0]["bin"].tolist() == [pytest.approx(0.75)]
    assert hist["value"].sum() == pytest.approx(1.0) and 0.7 < level < 0.8
    assert (f[f.quantity == "right_saturated"]["value"] == 0).all()


# --- retention -----------------------------------------------------------------------------
def test_token_delay_line_decodes_lags_zero_and_one():
    """Embedding rows are one-hot, h_t = [e(x_t), e(x_{t-1})]: arg-max decoding is exact at
    lags 0 and 1; chance is the majority class of the held-out half."""
    V = 5
    task = TokenTask(length=8, size=64, vocab=V)
    n = Net(NetConfig(cell="rnn", nonlinearity="relu", hidden_size=2 * V, vocab_size=V,
                      embedding_dim=V, output_size=V, path="reference"))
    with torch.no_grad():
        for p in n.parameters():
            p.zero_()
        n.embedding.weight.copy_(torch.eye(V))
        n.rnn.weight_ih_l0[:V] = torch.eye(V)
        n.rnn.weight_hh_l0[V:, :V] = torch.eye(V)
    r = Retention(max_lag=3, batch_size=64, alpha=1e-8, modes=("deterministic",))(n, task)
    acc = r.frame[r.frame.quantity == "accuracy"].sort_values("lag")["value"].to_numpy()
    assert acc[:2] == pytest.approx([1.0, 1.0])
    x = next(task.batches("test", 64)).inputs[32:]
    for lag in range(4):
        counts = torch.bincount(x[:, :8 - lag].reshape(-1), minlength=V)
        want = float(counts.max()) / counts.sum().item()
        got = r.frame[(r.frame.quantity == "chance") & (r.frame.lag == lag)]["value"].item()
        assert got == pytest.approx(want)


# --- uncertainty ---------------------------------------------------------------------------
def _constant_net(bias: list[float]) -> Net:
    n = net("lstm", "none", hidden=3).double()
    with torch.no_grad():
        n.head.weight.zero_()
        n.head.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    return n


def test_uncertainty_of_a_constant_prediction():
    """A head with zero weights predicts p = softmax(b) everywhere: accuracy = share of the
    predicted class, nll = -mean ln p_y, entropy = H(p), ece = |accuracy - max p|, one
    reliability bin holding every prediction."""
    b = [0.3, -0.4]
    task = FloatTask(length=4, size=32, double=True)
    r = Uncertainty(samples=2, bins=10, batch_size=32, modes=("deterministic",))(
        _constant_net(b), task)
    p = torch.softmax(torch.tensor(b, dtype=torch.float64), 0)
    y = next(task.batches("test", 32)).targets
    acc = float((y == 0).double().mean())
    m = r.summary["modes"]["deterministic"]
    assert m["accuracy"] == acc
    assert m["nll"] == pytest.approx(float(-torch.log(p[y]).mean()), rel=1e-12)
    assert m["entropy"] == pytest.approx(float(-(p * p.log()).sum()), rel=1e-12)
    assert m["ece"] == pytest.approx(abs(acc - float(p.max())), rel=1e-12)
    f = r.frame
    frac = f[f.quantity == "reliability_fraction"].sort_values("bin")["value"].to_numpy()
    conf_bin = math.ceil(float(p.max()) * 10) - 1
    assert frac[conf_bin] == 1.0 and frac.sum() == 1.0
    rel = f[(f.quantity == "reliability_confidence") & f["value"].notna()]["value"]
    assert rel.tolist() == [pytest.approx(float(p.max()))]


def test_mutual_information_of_two_kinds_of_network():
    """Per-sequence output dropout on a constant state: network k predicts uniform when it
    drops the unit and softmax(w h / q) when it keeps it. MI = H(mean_k p_k) - mean_k H(p_k)
    for each sequence, with the keeps of the probe's K draws."""
    K, B, q = 4, 8, 0.5
    n = Net(NetConfig(cell="rnn", hidden_size=1, input_size=3, output_size=2,
                      scheme="gal:p=0.5,p_recurrent=0", path="reference")).double()
    with torch.no_grad():
        for p in n.parameters():
            p.zero_()
        n.rnn.bias_ih_l0.fill_(1.0)
        n.head.weight.copy_(torch.tensor([[2.0], [-1.0]]))
    task = FloatTask(length=3, size=B, double=True)
    r = Uncertainty(samples=K, batch_size=B, modes=("mc",))(
        n, task, generator=torch.Generator().manual_seed(9))
    gen = torch.Generator().manual_seed(9)
    keeps = torch.stack([n.mask_plan().sample(3, B, generator=gen, dtype=torch.float64)
                         ["output"][:, 0] > 0 for _ in range(K)])  # [K, B]
    h = math.tanh(1.0)
    kept = torch.softmax(torch.tensor([2.0, -1.0], dtype=torch.float64) * h / q, 0)
    uniform = torch.full((2,), 0.5, dtype=torch.float64)

    def ent(p):
        return float(-(p * p.log()).sum())

    mi = []
    for b in range(B):
        ps = [kept if keeps[k, b] else uniform for k in range(K)]
        mi.append(ent(sum(ps) / K) - sum(ent(p) for p in ps) / K)
    assert r.summary["modes"]["mc"]["mutual_information"] == pytest.approx(sum(mi) / B, rel=1e-12)
