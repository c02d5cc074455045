"""saturation: forced gates are saturated where they must be; histograms sum to one."""
from __future__ import annotations

import pytest
import torch

from memloss.models.inference import expected_masks
from memloss.diagnostics.saturation import Saturation, gate_activations
from memloss.diagnostics.unroll import unroll

from .toys import FloatTask, net, open_gate_lstm


def test_forced_gates_are_right_saturated_and_closed_ones_left():
    n = open_gate_lstm("none")
    with torch.no_grad():
        n.rnn.bias_ih_l0[18:24] = -30.0  # output gate closed
    r = Saturation()(n, FloatTask())
    f = r.frame
    sat = f[f.quantity.isin(["left_saturated", "right_saturated"])]
    by = sat.groupby(["gate", "quantity"])["value"].mean()
    assert by[("input", "right_saturated")] == 1.0 and by[("forget", "right_saturated")] == 1.0
    assert by[("output", "left_saturated")] == 1.0 and by[("output", "right_saturated")] == 0.0
    assert len(sat[(sat.gate == "forget") & (sat.quantity == "left_saturated")]) == 6  # per unit
    hist = f[f.quantity == "gate_histogram"]
    assert hist.groupby("gate")["value"].sum().to_numpy() == pytest.approx([1.0, 1.0, 1.0])
    top = hist[(hist.gate == "forget")].sort_values("bin")["value"].to_numpy()
    assert top[-1] == 1.0
    assert r.summary["retain_gate"] == "forget" and r.summary["retain_gate_mean"] == 1.0


@pytest.mark.parametrize("scheme", ["none", "gal:p=0.3,p_recurrent=0.2", "weight-drop:p=0.3"])
def test_recomputed_gates_reproduce_the_lstm_states(scheme):
    n = net("lstm", scheme, layers=2)
    x = torch.randn(3, 5, 3)
    m = expected_masks(n)
    h, c = unroll(n, x, m).stacked()
    for k, gates in enumerate(gate_activations(n, x, m, h)):
        torch.testing.assert_close(gates["output"] * torch.tanh(c[:, k]), h[:, k])


@pytest.mark.parametrize("scheme", ["none", "gal:p=0.3,p_recurrent=0.2"])
def test_recomputed_gates_reproduce_the_layernorm_lstm_states(scheme):
    """h = o tanh(LN(c; g_c, b_c)) with the output gate recomputed from LN'd products."""
    n = net("layernorm-lstm", scheme, layers=2)
    with torch.no_grad():  # gains and shifts away from their init, so each one matters
        for name, p in n.rnn.named_parameters():
            if name.startswith("ln_"):
                p.uniform_(0.5, 1.5)
    x = torch.randn(3, 5, 3)
    m = expected_masks(n)
    h, c = unroll(n, x, m).stacked()
    for k, gates in enumerate(gate_activations(n, x, m, h)):
        p = n.rnn.layer_params(k)
        c_n = torch.nn.functional.layer_norm(c[:, k], c.shape[-1:], p["ln_cell_weight"],
                                             p["ln_cell_bias"], 1e-5)
        torch.testing.assert_close(gates["output"] * torch.tanh(c_n), h[:, k])
    assert set(gates) == {"input", "forget", "output"}


def test_gru_and_rnn_gate_names():
    assert set(Saturation()(net("gru", "semeniuta"), FloatTask()).frame.gate) == {"reset", "update"}
    assert set(Saturation()(net("rnn", "gal"), FloatTask()).frame.gate) == {"activation"}
    with pytest.raises(ValueError, match="relu"):
        Saturation()(net("rnn", nonlinearity="relu"), FloatTask())


def test_gate_activations_need_deterministic_masks():
    n = net("lstm", "gal")
    x = torch.randn(2, 3, 3)
    sampled = n.mask_plan().sample(3, 2)
    with pytest.raises(ValueError, match="deterministic"):
        gate_activations(n, x, sampled, torch.zeros(3, 1, 2, 6))


def test_bad_thresholds_raise():
    with pytest.raises(ValueError, match="low"):
        Saturation(low=0.9, high=0.1)
