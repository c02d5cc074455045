"""With no scheme the cells are torch.nn.LSTM/GRU/RNN; the native path equals the reference."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from memloss.models import Recurrent

MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


@pytest.mark.parametrize("cell", sorted(MODULES))
@pytest.mark.parametrize("path", ["reference", "native"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_matches_torch_nn(cell, path, batch_first):
    torch.manual_seed(0)
    kw = {"nonlinearity": "relu"} if cell == "rnn" else {}
    ref = MODULES[cell](5, 7, num_layers=2, batch_first=batch_first, **kw).double()
    layer = Recurrent(cell, 5, 7, num_layers=2, batch_first=batch_first, path=path, **kw).double()
    layer.load_state_dict(ref.state_dict())
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    L, B = 2, (4 if batch_first else 6)
    h0 = torch.randn(L, B, 7, dtype=torch.float64)
    hx = (h0, torch.randn_like(h0)) if cell == "lstm" else h0
    y0, hn0 = ref(x, hx)
    y1, hn1 = layer(x, hx)
    torch.testing.assert_close(y1, y0, rtol=0, atol=1e-12)
    for a, b in zip(hn1 if cell == "lstm" else (hn1,), hn0 if cell == "lstm" else (hn0,)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


NATIVE_SCHEMES = ["none", "zaremba:p=0.4", "gal:p=0.3,p_recurrent=0", "weight-drop:p=0.3",
                  "zaremba:p=0.3,scaling=expectation+weight-drop:p=0.2"]


@pytest.mark.parametrize("cell", sorted(MODULES))
@pytest.mark.parametrize("scheme", NATIVE_SCHEMES)
def test_native_path_equals_reference(cell, scheme):
    torch.manual_seed(0)
    ref = Recurrent(cell, 5, 6, num_layers=2, scheme=scheme, path="reference").double()
    nat = Recurrent(cell, 5, 6, num_layers=2, scheme=scheme, path="native").double()
    nat.load_state_dict(ref.state_dict())
    assert ref.chosen_path() == "reference" and nat.chosen_path() == "native"
    auto = Recurrent(cell, 5, 6, scheme=scheme)
    assert auto.chosen_path() == "native", "schemes with no in-recurrence site run natively"
    x = torch.randn(7, 3, 5, dtype=torch.float64, requires_grad=True)
    masks = ref.mask_plan().sample(7, 3, generator=torch.Generator().manual_seed(1),
                                   dtype=torch.float64)
    y_ref, _ = ref(x, masks=masks)
    y_nat, _ = nat(x, masks=masks)
    torch.testing.assert_close(y_nat, y_ref, rtol=0, atol=1e-12)
    g_ref = torch.autograd.grad(y_ref.square().sum(), [x, *ref.parameters()])
    g_nat = torch.autograd.grad(y_nat.square().sum(), [x, *nat.parameters()])
    for a, b in zip(g_nat, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("scheme", ["semeniuta", "moon", "gal:tied=false,p_recurrent=0",
                                    "zoneout", "hidden-dropout"])
def test_in_recurrence_schemes_do_not_run_natively(scheme):
    layer = Recurrent("lstm", 3, 4, scheme=scheme)
    assert layer.chosen_path() != "native"
    forced = Recurrent("lstm", 3, 4, scheme=scheme, path="native")
    with pytest.raises(ValueError, match="native"):
        forced(torch.randn(2, 1, 3))
