"""Every cell x scheme equals the per-equation reference, given the same explicit masks."""
from __future__ import annotations

import pytest
import torch

from memloss.models import Recurrent

from .reference_eqs import reference_forward
from .variants import cell_scheme_cases

CASES = cell_scheme_cases()
VALID = [c for c in CASES if c[3]]
INVALID = [c for c in CASES if not c[3]]

T, B, I, H = 6, 3, 5, 4


def _layer(cell, scheme, num_layers=2, path="reference"):
    torch.manual_seed(0)
    return Recurrent(cell, I, H, num_layers=num_layers, scheme=scheme, path=path).double()


def _state(cell, L=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    h0 = torch.randn(L, B, H, generator=g, dtype=torch.float64)
    return (h0, torch.randn(L, B, H, generator=g, dtype=torch.float64)) if cell == "lstm" else h0


def _close(a, b):
    if isinstance(a, tuple):
        for x, y in zip(a, b):
            _close(x, y)
        return
    torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("cid,cell,scheme,valid", VALID, ids=[c[0] for c in VALID])
@pytest.mark.parametrize("stochastic", [True, False], ids=["train-masks", "expected-masks"])
def test_layer_equals_equation_reference(cid, cell, scheme, valid, stochastic):
    layer = _layer(cell, scheme)
    x = torch.randn(T, B, I, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    hx = _state(cell)
    plan = layer.mask_plan()
    g = torch.Generator().manual_seed(3)
    masks = plan.sample(T, B, generator=g, dtype=torch.float64) if stochastic else \
        plan.expected(dtype=torch.float64)
    out, hn = layer(x, hx, masks=masks)
    ref_out, ref_hn = reference_forward(layer, x, hx, masks)
    _close(out, ref_out)
    _close(hn, ref_hn)


@pytest.mark.parametrize("cid,cell,scheme,valid", VALID, ids=[c[0] for c in VALID])
def test_sampled_masks_are_used_and_replayable(cid, cell, scheme, valid):
    """Sampling inside forward from a seeded generator equals passing the same masks."""
    layer = _layer(cell, scheme, num_layers=1).train()
    x = torch.randn(T, B, I, dtype=torch.float64)
    out1, _ = layer(x, generator=torch.Generator().manual_seed(7))
    masks = layer.mask_plan().sample(T, B, generator=torch.Generator().manual_seed(7),
                                     dtype=torch.float64)
    out2, _ = layer(x, masks=masks)
    _close(out1, out2)


@pytest.mark.parametrize("cid,cell,scheme,valid", INVALID, ids=[c[0] for c in INVALID])
def test_scheme_without_its_site_is_rejected(cid, cell, scheme, valid):
    with pytest.raises(ValueError, match="site|cell state|output gate"):
        Recurrent(cell, I, H, scheme=scheme)


def test_invalid_cases_are_the_expected_ones():
    """Only cell-state schemes fail on GRU/RNN; every scheme is valid on an LSTM."""
    assert all(c[1] != "lstm" for c in INVALID)
    names = {c[0].split("-", 1)[1].split("[")[0] for c in INVALID}
    assert names <= {"moon", "zoneout", "output-zoneout", "moon+zoneout+hidden"}
