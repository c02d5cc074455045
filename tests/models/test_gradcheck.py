"""torch.autograd.gradcheck through every cell x scheme on the reference and the fused path
(float64, fixed explicit masks): each path's gradients against finite differences,
independently of any other path."""
from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from .variants import cell_scheme_cases, make_layer

# one case per (cell, scheme name): the first variant of each
_seen, CASES = set(), []
for cid, cell, scheme, valid in cell_scheme_cases():
    key = (cell, cid.split("[")[0])
    if valid and key not in _seen:
        _seen.add(key)
        CASES.append((cid, cell, scheme))


@pytest.mark.parametrize("path", ["reference", "fused"])
@pytest.mark.parametrize("cid,cell,scheme", CASES, ids=[c[0] for c in CASES])
def test_gradcheck(cid, cell, scheme, path):
    torch.manual_seed(0)
    layer = make_layer(cell, 2, 3, num_layers=2, scheme=scheme, path=path).double()
    T, B = 3, 2
    masks = layer.mask_plan().sample(T, B, generator=torch.Generator().manual_seed(1),
                                     dtype=torch.float64)
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(T, B, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, B, 3, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    rest = (torch.zeros_like(h0),) * (len(layer.state_names) - 1)

    def f(x, h0, *ps):
        hx = (h0, *rest) if rest else h0
        out, _ = functional_call(layer, dict(zip(names, ps)), (x, hx), {"masks": masks})
        return out

    assert torch.autograd.gradcheck(f, (x, h0, *params), eps=1e-6, atol=1e-6)
