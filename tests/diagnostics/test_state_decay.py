"""state-decay: Semeniuta's open-gate analysis (eq. 17 / eq. 19) measured on forced nets."""
from __future__ import annotations

import math

import pytest
import torch

from memloss.diagnostics import BASE_COLUMNS
from memloss.diagnostics.state_decay import StateDecay, analytic_weights
from memloss.models import SiteSpec

from .toys import FloatTask, net, open_gate_lstm

T = 8


def _curve(frame, quantity, mode="deterministic", layer=0):
    sel = frame[(frame.quantity == quantity) & (frame["mode"] == mode)]
    if layer is not None:
        sel = sel[sel.layer == layer]
    return sel.sort_values("t")["value"].to_numpy()


def test_cell_dropout_decays_as_p_to_the_t_under_expectation_scaling():
    """Gates open, g = 0, random c_0: deterministic c_t = (1-p)^(t+1) c_0 (eq. 17)."""
    p = 0.3
    result = StateDecay(init_scale=1.0, samples=2)(open_gate_lstm(f"moon:p={p},scaling=expectation"),
                                                  FloatTask(length=T))
    c = _curve(result.frame, "c_norm")
    ratios = c[1:] / c[:-1]
    assert ratios == pytest.approx([1 - p] * (T - 1), rel=1e-4)
    eq17 = _curve(result.frame, "eq17", layer=None)
    assert eq17 == pytest.approx([(1 - p) ** (t + 1) for t in range(T)])
    assert c / c[0] == pytest.approx(eq17 / eq17[0], rel=1e-4)
    assert result.summary["decay_rate"]["deterministic"] == pytest.approx(1 - p, rel=1e-4)
    # the inverted convention's test factor (1) keeps the state: no decay at all
    assert result.summary["decay_rate"]["other-scaling"] == pytest.approx(1.0, rel=1e-4)


def test_update_dropout_keeps_the_state_flat():
    """Gates open, g = 0: dropping the update leaves c_t = c_0 in every mode (eq. 19)."""
    result = StateDecay(init_scale=1.0, samples=3)(open_gate_lstm("semeniuta:p=0.5,scaling=expectation"),
                                                  FloatTask(length=T))
    for mode in ("deterministic", "other-scaling", "train-mode"):
        c = _curve(result.frame, "c_norm", mode)
        assert c == pytest.approx([c[0]] * T, rel=1e-5)
    assert "eq17" not in set(result.frame.quantity)
    assert _curve(result.frame, "eq19", layer=None) == pytest.approx([0.5] * T)


@pytest.mark.parametrize("scaling,factor", [("expectation", 0.75), ("inverted", 1.0)])
def test_update_dropout_grows_linearly_per_eq19(scaling, factor):
    """Gates open, c_0 = 0, g = tanh(0.5): deterministic c_t = (t+1) s g per unit."""
    g = math.tanh(0.5)
    H = 6
    result = StateDecay(samples=1)(open_gate_lstm(f"semeniuta:p=0.25,scaling={scaling}", H, 0.5),
                                   FloatTask(length=T))
    c = _curve(result.frame, "c_norm")
    assert c == pytest.approx([(t + 1) * factor * g * math.sqrt(H) for t in range(T)], rel=1e-5)


def test_cell_dropout_with_updates_follows_eq17_sum():
    """Gates open, c_0 = 0: c_t = sum_i q^(t-i+1) g (eq. 17 with h_0 = 0)."""
    q, g, H = 0.6, math.tanh(0.5), 6
    result = StateDecay(samples=1)(open_gate_lstm("moon:p=0.4,scaling=expectation", H, 0.5),
                                   FloatTask(length=T))
    want = [sum(q ** (t - i + 1) for i in range(t + 1)) * g * math.sqrt(H) for t in range(T)]
    assert _curve(result.frame, "c_norm") == pytest.approx(want, rel=1e-5)


def test_analytic_weights_per_convention_and_sampling():
    q = 0.5
    seq_inv = SiteSpec(0.5, "sequence", scaling="inverted")
    # training mode, per sequence, inverted: kept units grow 1/q per step -> E = q * q^-(t+1)
    assert analytic_weights(seq_inv, 3, "eq17", "train-mode") == pytest.approx([1, 2, 4])
    assert analytic_weights(seq_inv, 3, "eq17", "deterministic") == [1.0, 1.0, 1.0]
    assert analytic_weights(seq_inv, 3, "eq17", "other-scaling") == pytest.approx([q, q**2, q**3])
    step_exp = SiteSpec(0.5, "step", scaling="expectation")
    assert analytic_weights(step_exp, 3, "eq17", "train-mode") == pytest.approx([q, q**2, q**3])
    assert analytic_weights(step_exp, 3, "eq19", "deterministic") == pytest.approx([q] * 3)
    assert analytic_weights(step_exp, 3, "eq19", "other-scaling") == pytest.approx([1.0] * 3)


def test_frame_layout_and_summary_for_gru():
    n = net("gru", "hidden-dropout:p=0.2", layers=2)
    result = StateDecay(samples=2, batch_size=4)(n, FloatTask(length=5))
    f = result.frame
    assert list(f.columns[:len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    assert set(f.quantity) == {"h_norm", "h_ratio", "eq17", "eq17_ratio"}
    assert set(f["cell"]) == {"gru"} and set(f["scheme"]) == {"hidden-dropout:p=0.2,sampling=sequence,scaling=inverted"}
    assert set(f.layer.dropna()) == {0, 1}
    assert len(f[(f.quantity == "h_norm") & (f["mode"] == "train-mode")]) == 5 * 2
    assert result.summary["quantity"] == "h_norm"


@pytest.mark.parametrize("kw,match", [({"samples": 0}, "samples"), ({"split": "dev"}, "split"),
                                      ({"modes": ("mc",)}, "mode"), ({"init_scale": -1}, "init_scale")])
def test_bad_parameters_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        StateDecay(**kw)


def test_the_same_generator_seed_gives_the_same_frame():
    n = net("lstm", "moon:p=0.5")
    r1 = StateDecay(samples=2)(n, FloatTask(), generator=torch.Generator().manual_seed(3))
    r2 = StateDecay(samples=2)(n, FloatTask(), generator=torch.Generator().manual_seed(3))
    assert r1.frame.equals(r2.frame)
