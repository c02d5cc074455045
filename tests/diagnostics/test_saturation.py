"""saturation: forced gates are saturated where they must be; histograms sum to one; the
gates are what each cell's step computes (checked against the equation reference for every
registered cell) and what the cell declares."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from memloss.models import list_cells
from memloss.models.cells import CellSpec, get_cell
from memloss.models.inference import expected_masks
from memloss.diagnostics import NotApplicable
from memloss.diagnostics.saturation import Saturation, gate_activations
from memloss.diagnostics.unroll import record_activations, unroll
from tests.models.reference_eqs import reference_forward

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
    s = unroll(n, x, m).stacked()
    h, c = s["h"], s["c"]
    for k, gates in enumerate(gate_activations(n, x, m)):
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
    s = unroll(n, x, m).stacked()
    h, c = s["h"], s["c"]
    for k, gates in enumerate(gate_activations(n, x, m)):
        p = n.rnn.layer_params(k)
        c_n = torch.nn.functional.layer_norm(c[:, k], c.shape[-1:], p["ln_cell_weight"],
                                             p["ln_cell_bias"], 1e-5)
        torch.testing.assert_close(gates["output"] * torch.tanh(c_n), h[:, k])
    assert set(gates) == {"input", "forget", "output"}


def test_gru_and_rnn_gate_names():
    assert set(Saturation()(net("gru", "semeniuta"), FloatTask()).frame.gate) == {"reset", "update"}
    assert set(Saturation()(net("rnn", "gal"), FloatTask()).frame.gate) == {"activation"}
    with pytest.raises(NotApplicable, match="relu") as e:
        Saturation()(net("rnn", nonlinearity="relu"), FloatTask())
    assert "\n" not in str(e.value)


def _scheme(spec: CellSpec) -> str:
    """Masks inside the step and on the products, from the sites the cell offers."""
    parts = ["gal:p=0.3,p_recurrent=0.2"]
    if "update" in spec.sites:
        parts.append("semeniuta:p=0.25")
    if "cell" in spec.sites:
        parts.append("moon:p=0.2")
    return "+".join(parts)


@pytest.mark.parametrize("sampled", [False, True], ids=["expected", "sampled"])
@pytest.mark.parametrize("cell", list_cells())
def test_recorded_activations_are_the_reference_equations(cell, sampled):
    """Every registered cell: the step records exactly the activations it declares, with
    the values of the equation reference (tests/models/reference_eqs.py), under expected and
    sampled masks, in every layer. A step that reports a wrong gate fails here."""
    spec = get_cell(cell)
    n = net(cell, _scheme(spec), layers=2).double()
    x = torch.randn(3, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    plan = n.mask_plan()
    m = (plan.sample(5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
         if sampled else plan.expected(dtype=torch.float64))
    got = record_activations(n, x, m)
    want: list = []
    reference_forward(n.rnn, x.transpose(0, 1), masks=m, record=want)
    assert len(got) == len(want) == 2
    for layer, (g, w) in enumerate(zip(got, want)):
        assert list(g) == [a.name for a in spec.activations] and set(w) == set(g)
        for name in g:
            torch.testing.assert_close(g[name], torch.stack(w[name]), msg=f"l{layer}.{name}")


def test_the_reference_refuses_a_cell_it_has_no_equations_for():
    layer = SimpleNamespace(cell=SimpleNamespace(name="no-such-cell"))
    with pytest.raises(NotImplementedError, match="no equations for cell 'no-such-cell'"):
        reference_forward(layer, torch.zeros(1, 1, 1))


def test_a_cell_lacking_or_misdeclaring_activations_gets_one_line():
    from dataclasses import replace

    from memloss.models.cells import Activation

    n = net("gru")
    x = torch.randn(2, 3, 3)
    n.rnn.cell = replace(n.rnn.cell, activations=(), memory=None)
    for call, match in ((lambda: Saturation()(n, FloatTask()), "declares neither a gate"),
                        (lambda: record_activations(n, x, expected_masks(n)),
                         "declares no activations")):
        with pytest.raises(NotApplicable, match=match) as e:
            call()
        assert "\n" not in str(e.value)
    n.rnn.cell = replace(n.rnn.cell, activations=(Activation("q", "q", "sigmoid"),))
    with pytest.raises(NotApplicable, match=r"records \['n', 'r', 'z'\] but the cell declares"):
        record_activations(n, x, expected_masks(n))


def test_sampled_masks_give_the_gates_of_that_draw():
    """Gates under a sampled recurrent mask differ from those under its expectation."""
    n = net("lstm", "gal:p=0.5,p_recurrent=0.5")
    x = torch.randn(2, 4, 3)
    sampled = n.mask_plan().sample(4, 2, generator=torch.Generator().manual_seed(0))
    a = gate_activations(n, x, sampled)[0]["forget"]
    b = gate_activations(n, x, expected_masks(n))[0]["forget"]
    assert a.shape == b.shape == (4, 2, 6) and not torch.allclose(a, b)


def test_bad_thresholds_raise():
    with pytest.raises(ValueError, match="low"):
        Saturation(low=0.9, high=0.1)
