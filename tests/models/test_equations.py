"""Every cell x scheme variant x mask mode x path equals the per-equation float64 reference
(tests/models/reference_eqs.py), outputs, final states and every gradient, given the same
explicit masks. Cases come from the registries (tests/models/variants.py)."""
from __future__ import annotations

import pytest
import torch

from memloss.models import Recurrent, get_cell

from .reference_eqs import reference_forward
from .variants import cell_scheme_cases, make_layer, paths_for

CASES = cell_scheme_cases()
VALID = [c for c in CASES if c[3]]
INVALID = [c for c in CASES if not c[3]]
PATH_CASES = [(f"{cid}-{path}", cell, scheme, path) for cid, cell, scheme, _ in VALID
              for path in paths_for(cell, scheme)]

T, B, I, H, L = 6, 3, 5, 4, 2


def _layer(cell, scheme, num_layers=L, path="reference"):
    torch.manual_seed(0)
    return make_layer(cell, I, H, num_layers=num_layers, scheme=scheme, path=path).double()


def _state(layer, gen):
    """A random initial state with every state of the layer (h, c and any carried one)."""
    n = len(layer.state_names)
    s = tuple(torch.randn(L, B, H, generator=gen, dtype=torch.float64) for _ in range(n))
    return s if n > 1 else s[0]


def _as_tuple(s):
    return s if isinstance(s, tuple) else (s,)


def _outputs_and_grads(fn, layer, x, hx, weights):
    """Outputs, final states and the gradients of a loss touching all of them w.r.t. the
    input, every initial state and every parameter."""
    x = x.clone().requires_grad_()
    hx = tuple(h.clone().requires_grad_() for h in _as_tuple(hx))
    out, hn = fn(x, hx if len(hx) > 1 else hx[0])
    hn = _as_tuple(hn)
    loss = (out * weights[0]).sum() + sum((h * w).sum() for h, w in zip(hn, weights[1:]))
    grads = torch.autograd.grad(loss, [x, *hx, *layer.parameters()], allow_unused=True)
    return [out, *hn, *grads]


@pytest.mark.parametrize("stochastic", [True, False], ids=["train-masks", "expected-masks"])
@pytest.mark.parametrize("cid,cell,scheme,path", PATH_CASES, ids=[c[0] for c in PATH_CASES])
def test_path_equals_equation_reference(cid, cell, scheme, path, stochastic):
    layer = _layer(cell, scheme, path=path)
    assert layer.chosen_path() == path
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(T, B, I, dtype=torch.float64, generator=gen)
    hx = _state(layer, gen)
    plan = layer.mask_plan()
    masks = plan.sample(T, B, generator=gen, dtype=torch.float64) if stochastic else \
        plan.expected(dtype=torch.float64)
    n = len(layer.state_names)
    weights = [torch.randn(T, B, H, generator=gen, dtype=torch.float64)]
    weights += [torch.randn(L, B, H, generator=gen, dtype=torch.float64) for _ in range(n)]
    got = _outputs_and_grads(lambda x, h: layer(x, h, masks=masks), layer, x, hx, weights)
    want = _outputs_and_grads(lambda x, h: reference_forward(layer, x, h, masks), layer, x, hx,
                              weights)
    names = ["output", *(f"{s}_n" for s in layer.state_names), "d_input",
             *(f"d_{s}_0" for s in layer.state_names),
             *(f"d_{name}" for name, _ in layer.named_parameters())]
    for name, a, b in zip(names, got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("cid,cell,scheme,valid", VALID, ids=[c[0] for c in VALID])
def test_sampled_masks_are_used_and_replayable(cid, cell, scheme, valid):
    """Sampling inside forward from a seeded generator equals passing the same masks."""
    layer = _layer(cell, scheme, num_layers=1).train()
    x = torch.randn(T, B, I, dtype=torch.float64)
    out1, _ = layer(x, generator=torch.Generator().manual_seed(7))
    masks = layer.mask_plan().sample(T, B, generator=torch.Generator().manual_seed(7),
                                     dtype=torch.float64)
    out2, _ = layer(x, masks=masks)
    torch.testing.assert_close(out1, out2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cid,cell,scheme,valid", INVALID, ids=[c[0] for c in INVALID])
def test_scheme_without_its_site_is_rejected(cid, cell, scheme, valid):
    with pytest.raises(ValueError, match="site|cell state|output gate"):
        make_layer(cell, I, H, scheme=scheme)


def test_invalid_cases_are_the_expected_ones():
    """Only cell-state schemes fail, and only on cells without a cell state; every scheme is
    valid on a cell with a cell state and an output gate."""
    full = {c for c in {c[1] for c in CASES}
            if {"cell", "update", "output_gate"} <= get_cell(c).features}
    assert full >= {"lstm", "layernorm-lstm"}
    assert all(c[1] not in full for c in INVALID)
    names = {c[0].split("-", 1)[1].split("[")[0] for c in INVALID if c[1] in ("gru", "rnn")}
    assert names <= {"moon", "zoneout", "output-zoneout", "moon+zoneout+hidden"}


def test_a_bare_layer_rejects_a_site_only_a_net_has():
    """Gal's word-type embedding dropout acts on a Net's embedding; a Recurrent alone cannot
    apply it and says so instead of ignoring it."""
    with pytest.raises(ValueError, match="'embedding' site.*Net"):
        Recurrent("lstm", 3, 4, scheme="gal:p_embedding=0.2")
    Recurrent("lstm", 3, 4, scheme="gal:p_embedding=0")  # valid
