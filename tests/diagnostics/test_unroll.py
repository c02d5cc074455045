"""The step-wise unroll equals the full-sequence forward for every cell x scheme."""
from __future__ import annotations

import pytest
import torch

from memloss.models.inference import expected_masks, mode_masks, net_scaling
from memloss.diagnostics.unroll import StepwiseError, check_stepwise, readout, reference_view, \
    step_masks, unroll
from memloss.models import Net, NetConfig, get_cell, list_cells, list_schemes, parse_scheme

VARIANTS = [s for s in list_schemes() if s != "output-zoneout"] + [
    "moon:sampling=step", "semeniuta:sampling=sequence", "gal:tied=false,p_embedding=0.2",
    "semeniuta:p=0.3+zaremba:p=0.2"]


def _make(cell: str, scheme: str, tokens: bool) -> Net:
    kw = {"vocab_size": 7} if tokens else {"input_size": 4}
    return Net(NetConfig(cell=cell, hidden_size=5, num_layers=2, scheme=scheme,
                         output_size=3, path="reference", **kw))


def _applies(cell: str, scheme: str) -> bool:
    """Whether a cell offers every site a scheme needs (the pairs that do not are rejected
    at construction, tested in tests/models)."""
    try:
        parse_scheme(scheme).sites(get_cell(cell))
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("cell,scheme", [(c, s) for s in VARIANTS for c in list_cells()
                                         if _applies(c, s)])
def test_unroll_equals_full_forward(cell, scheme):
    """In float64, so that one product over all steps and one per step round alike (a
    LayerNorm-LSTM's normalization magnifies float32's differences to 1e-5)."""
    tokens = "p_embedding" in scheme
    net = _make(cell, scheme, tokens).double()
    torch.manual_seed(1)
    x = torch.randint(0, 7, (3, 6)) if tokens else torch.randn(3, 6, 4, dtype=torch.float64)
    masks = mode_masks(net, "train-mode", 6, 3, generator=torch.Generator().manual_seed(2),
                       device=torch.device("cpu"))
    masks = {k: m.double() if m.is_floating_point() else m for k, m in masks.items()}
    full, h_n = net(x, masks=masks)
    trace = unroll(net, x, masks)
    tol = dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(trace.outputs, full, **tol)
    h_last = h_n[0] if isinstance(h_n, tuple) else h_n
    torch.testing.assert_close(trace.h[-1], h_last, **tol)
    if "c" in trace.parts:
        torch.testing.assert_close(trace.parts["c"][-1], h_n[1], **tol)
    for t in range(6):  # the readout from the recorded state is the net's output
        torch.testing.assert_close(readout(net, trace.h[t], step_masks(net, masks, t)),
                                   full[:, t], rtol=1e-5, atol=1e-6)


def test_unroll_from_the_middle_replays_the_same_masks():
    net = _make("lstm", "moon:sampling=step", False)
    x = torch.randn(2, 7, 4)
    masks = mode_masks(net, "train-mode", 7, 2, generator=torch.Generator().manual_seed(0),
                       device=torch.device("cpu"))
    full = unroll(net, x, masks)
    tail = unroll(net, x[:, 3:], masks, (full.h[2], full.parts["c"][2]), start=3)
    torch.testing.assert_close(tail.outputs, full.outputs[:, 3:])


def test_step_masks_slices_only_per_step_masks():
    net = _make("lstm", "moon:sampling=step+zaremba:p=0.3", False)
    masks = net.mask_plan().sample(5, 2, generator=torch.Generator().manual_seed(0))
    m2 = step_masks(net, masks, 2)
    assert torch.equal(m2["l0.cell"], masks["l0.cell"][2:3])
    assert torch.equal(m2["output"], masks["output"][2:3])
    seq = _make("lstm", "gal", False)
    sm = seq.mask_plan().sample(5, 2, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(step_masks(seq, sm, 3)[k], v) for k, v in sm.items())


def test_other_scaling_flips_the_dropout_factor_only():
    inv = _make("lstm", "moon:p=0.4+zoneout:p_cell=0,p_hidden=0.1", False)
    assert net_scaling(inv) == "inverted"
    m = expected_masks(inv, other=True)
    assert m["l0.cell"].item() == pytest.approx(0.6)
    assert m["l0.zoneout_hidden"].item() == pytest.approx(0.1)
    assert expected_masks(inv)["l0.cell"].item() == 1.0
    exp = _make("lstm", "moon:p=0.4,scaling=expectation", False)
    assert net_scaling(exp) == "expectation"
    assert expected_masks(exp)["l0.cell"].item() == pytest.approx(0.6)
    assert expected_masks(exp, other=True)["l0.cell"].item() == 1.0
    assert net_scaling(_make("lstm", "none", False)) == "none"
    assert net_scaling(_make("lstm", "moon:scaling=expectation+zaremba", False)) == "mixed"


def test_unknown_mode_is_rejected():
    net = _make("gru", "gal", False)
    with pytest.raises(ValueError, match="unknown inference mode"):
        mode_masks(net, "bogus", 3, 2, generator=torch.Generator(), device=torch.device("cpu"))


def test_check_stepwise_refuses_a_net_whose_returned_state_is_not_all_it_carries():
    """A net that drops part of its state (here: the output gate output-zoneout carries) is
    refused with the reason, never probed as another model."""
    net = _make("lstm", "output-zoneout:p=0.02", False)  # a low rate is caught too
    forward = net.forward

    def drops_the_gate(*args, **kwargs):
        out, state = forward(*args, **kwargs)
        return out, tuple(state[:2])

    net.forward = drops_the_gate
    with pytest.raises(StepwiseError, match="output gate.*not part of the recurrent state"):
        check_stepwise(net, torch.randn(2, 5, 4), "probe-x")


@pytest.mark.parametrize("scheme", ["zoneout:p_cell=0.01,p_hidden=0.01", "moon:sampling=step",
                                    "gal:tied=false", "weight-drop", "output-zoneout:p=0.3"])
def test_check_stepwise_accepts_nets_whose_state_is_all_they_carry(scheme):
    net = _make("lstm", scheme, False)
    check_stepwise(net, torch.randn(2, 5, 4), "probe-x")  # no error
    net64 = _make("gru", "zoneout:p_cell=0,p_hidden=0.3", False).double()
    check_stepwise(net64, torch.randn(2, 5, 4, dtype=torch.float64), "probe-x")


def test_unroll_passes_back_every_part_of_the_state():
    """A net whose state has a third part gets that part back at the next step."""
    net = _make("lstm", "none", False)
    seen = []

    class Extra(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.rnn, self.config = net, net.rnn, net.config

        def mask_plan(self):
            return net.mask_plan()

        def forward(self, x, hx=None, masks=None):
            seen.append(None if hx is None else hx[2])
            out, (h, c) = net(x, None if hx is None else hx[:2], masks=masks)
            return out, (h, c, torch.full((1,), float(len(seen))))

    trace = unroll(Extra(), torch.randn(2, 3, 4), expected_masks(net))
    assert seen[0] is None and [float(s) for s in seen[1:]] == [1.0, 2.0]
    assert len(trace.states[-1]) == 3 and len(trace.h) == 3


def test_reference_view_shares_nothing_it_changes():
    n = Net(NetConfig(cell="lstm", hidden_size=4, input_size=3, output_size=2, path="auto"))
    view = reference_view(n)
    assert view.rnn.path == "reference" and n.rnn.path == "auto"
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(view(x)[0], n(x)[0], rtol=1e-5, atol=1e-6)
    ref = _make("gru", "gal", False)
    assert reference_view(ref) is ref
