"""The fused path equals the reference path (outputs, final states, every gradient) for every
cell x scheme variant generated from the registries, with explicit masks; dispatch rules."""
from __future__ import annotations

import pytest
import torch

from memloss.models import Recurrent
from memloss.models.cells import get_cell
from memloss.models.paths.fused import _FusedGRU, _FusedLSTM, _FusedRNN, fused_supported
from memloss.models.masks import LayerMasks

from .variants import cell_scheme_cases

VALID = [(cid, cell, scheme) for cid, cell, scheme, ok in cell_scheme_cases() if ok]
I, H, T, B, L = 3, 4, 5, 3, 2
TOL = dict(atol=1e-11, rtol=1e-9)


def _pair(cell, scheme, batch_first=False, device="cpu", **kw):
    torch.manual_seed(0)
    ref = Recurrent(cell, I, H, num_layers=L, scheme=scheme, batch_first=batch_first,
                    path="reference", **kw).double().to(device)
    fus = Recurrent(cell, I, H, num_layers=L, scheme=scheme, batch_first=batch_first,
                    path="fused", **kw).double().to(device)
    fus.load_state_dict(ref.state_dict())
    return ref, fus


def _run(layer, x, hx, masks, weights):
    """Forward, then gradients of a loss touching outputs and every final state."""
    x = x.clone().requires_grad_()
    hx = tuple(h.clone().requires_grad_() for h in hx)
    out, hn = layer(x, hx if len(hx) == 2 else hx[0], masks=masks)
    hn = hn if isinstance(hn, tuple) else (hn,)
    loss = (out * weights[0]).sum() + sum((h * w).sum() for h, w in zip(hn, weights[1:]))
    inputs = [x, *hx, *layer.parameters()]
    grads = torch.autograd.grad(loss, inputs)
    return [out, *hn, *grads]


def _compare(cell, scheme, stochastic, batch_first=False, device="cpu", **kw):
    ref, fus = _pair(cell, scheme, batch_first, device, **kw)
    gen = torch.Generator().manual_seed(1)
    plan = ref.mask_plan()
    masks = (plan.sample(T, B, generator=gen, device=device, dtype=torch.float64) if stochastic
             else plan.expected(device=device, dtype=torch.float64))
    opts = dict(dtype=torch.float64, device=device)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=gen).to(**opts)
    n_state = 2 if get_cell(cell).has_cell else 1
    hx = tuple(torch.randn(L, B, H, generator=gen).to(**opts) for _ in range(n_state))
    weights = [torch.randn(x.shape[:-1] + (H,), generator=gen).to(**opts)]
    weights += [torch.randn(L, B, H, generator=gen).to(**opts) for _ in range(n_state)]
    a = _run(ref, x, hx, masks, weights)
    b = _run(fus, x, hx, masks, weights)
    names = ["output", *(["h_n", "c_n"][:n_state]), "d_input", *(["d_h0", "d_c0"][:n_state]),
             *(f"d_{n}" for n, _ in fus.named_parameters())]
    for name, u, v in zip(names, a, b):
        torch.testing.assert_close(v, u, **TOL, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("stochastic", [True, False], ids=["sampled", "expected"])
@pytest.mark.parametrize("cid,cell,scheme", VALID, ids=[c[0] for c in VALID])
def test_fused_equals_reference(cid, cell, scheme, stochastic):
    _compare(cell, scheme, stochastic)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fused_batch_first_no_bias(cell):
    scheme = "zoneout:p_cell=0,p_hidden=0.3+hidden-dropout:p=0.2+semeniuta:p=0.3"
    _compare(cell, scheme, True, batch_first=True, bias=False)


def test_fused_relu_rnn():
    _compare("rnn", "semeniuta:p=0.3+zoneout:p_cell=0,p_hidden=0.2", True, nonlinearity="relu")


@pytest.mark.parametrize("cell,fn", [("lstm", _FusedLSTM), ("gru", _FusedGRU), ("rnn", _FusedRNN)])
def test_fused_function_gradcheck(cell, fn):
    """The hand-written backward against finite differences, independent of the reference."""
    g = torch.Generator().manual_seed(3)
    G = get_cell(cell).gates
    sites = {"update": "update", "hidden": "hidden", "zoneout_hidden": "zoneout_hidden"}
    if cell == "lstm":
        sites.update(cell="cell", zoneout_cell="zoneout_cell", output_gate="output_gate")
    if cell == "rnn":
        del sites["update"]
    vals = {s: (torch.rand(T, B, H, generator=g) < 0.6).double() * 1.4 for s in sites}
    vals["recurrent"] = (torch.rand(B, H, generator=g) < 0.7).double() / 0.7
    M = LayerMasks(vals, frozenset(sites), frozenset()).gate_major()
    xw = torch.randn(T, B, G * H, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(G * H, H, generator=g, dtype=torch.float64).mul(0.5).requires_grad_()
    h0 = torch.randn(B, H, generator=g, dtype=torch.float64, requires_grad=True)
    if cell == "lstm":
        c0 = torch.randn(B, H, generator=g, dtype=torch.float64, requires_grad=True)
        args = (xw, w, h0, c0, M)
    elif cell == "gru":
        b = torch.randn(G * H, generator=g, dtype=torch.float64, requires_grad=True)
        args = (xw, w, b, h0, M)
    else:
        args = (xw, w, h0, M, False)
    assert torch.autograd.gradcheck(lambda *a: fn.apply(*a), args, atol=1e-7)


def test_fused_output_only_loss_and_frozen_inputs():
    """Unused final states and inputs that need no gradient take the fast branches."""
    ref, fus = _pair("lstm", "semeniuta:p=0.3")
    ref.weight_hh_l0.requires_grad_(False)
    fus.weight_hh_l0.requires_grad_(False)
    x = torch.randn(T, B, I, dtype=torch.float64)
    masks = ref.mask_plan().sample(T, B, generator=torch.Generator().manual_seed(0),
                                   dtype=torch.float64)
    grads = []
    for layer in (ref, fus):
        out, _ = layer(x, masks=masks)
        params = [p for p in layer.parameters() if p.requires_grad]
        grads.append(torch.autograd.grad(out.square().sum(), params))
    for u, v in zip(*grads):
        torch.testing.assert_close(v, u, **TOL)


# --- dispatch ---------------------------------------------------------------------------
@pytest.mark.parametrize("scheme,want", [
    (None, "native"), ("zaremba:p=0.5", "native"), ("weight-drop:p=0.3", "native"),
    ("gal:p=0.3,p_recurrent=0.3", "fused"), ("gal:p=0.3,p_recurrent=0,tied=false", "fused"),
    ("semeniuta:p=0.3", "fused"), ("zoneout", "fused"), ("moon:p=0.3", "fused"),
])
def test_auto_dispatch(scheme, want):
    layer = Recurrent("lstm", 3, 4, scheme=scheme)
    assert layer.chosen_path() == want
    assert f"chosen_path={want!r}" in repr(layer)


@pytest.mark.parametrize("path", ["reference", "native", "fused"])
def test_override_is_respected(path):
    layer = Recurrent("gru", 3, 4, scheme="zaremba:p=0.5", path=path)
    assert layer.chosen_path() == path
    layer(torch.randn(T, B, 3))


def test_fused_supported_rejects_unknown_sites():
    assert fused_supported(get_cell("lstm"), {"update": None})
    assert not fused_supported(get_cell("lstm"), {"mystery": None})


def test_native_override_rejects_in_recurrence_masks():
    with pytest.raises(ValueError, match="native"):
        Recurrent("lstm", 3, 4, scheme="semeniuta:p=0.3", path="native")(torch.randn(T, B, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cid,cell,scheme", VALID[::4], ids=[c[0] for c in VALID[::4]])
def test_fused_equals_reference_cuda(cid, cell, scheme):
    _compare(cell, scheme, True, device="cuda")


@pytest.mark.parametrize("onednn", [True, False], ids=["onednn", "plain"])
@pytest.mark.parametrize("cell,scheme", [
    ("lstm", "semeniuta:p=0.3+zaremba:p=0.3"), ("lstm", "zoneout+moon:p=0.2"),
    ("lstm", "gal:p=0.3,p_recurrent=0.3,tied=false"), ("gru", "gal:p=0.3,p_recurrent=0.3"),
    ("gru", "semeniuta:p=0.3+hidden-dropout:p=0.2"), ("rnn", "semeniuta:p=0.3"),
])
def test_fused_float32_products(cell, scheme, onednn, monkeypatch):
    """float32 on CPU runs the products through oneDNN prepacked weights when available;
    both product back ends agree with the reference to float32 precision."""
    from memloss.models.paths import gemm
    monkeypatch.setattr(gemm, "ONEDNN", onednn)
    torch.manual_seed(0)
    ref = Recurrent(cell, 6, 8, num_layers=2, scheme=scheme, path="reference")
    fus = Recurrent(cell, 6, 8, num_layers=2, scheme=scheme, path="fused")
    fus.load_state_dict(ref.state_dict())
    masks = ref.mask_plan().sample(7, 5, generator=torch.Generator().manual_seed(2))
    x = torch.randn(7, 5, 6)
    res = []
    for layer in (ref, fus):
        xi = x.clone().requires_grad_()
        out, _ = layer(xi, masks=masks)
        res.append([out, *torch.autograd.grad(out.square().sum(), [xi, *layer.parameters()])])
    for u, v in zip(*res):
        torch.testing.assert_close(v, u, atol=2e-5, rtol=1e-4)


_TRITON_SCRIPT = r"""
import torch
from memloss.models import Recurrent
from memloss.models.paths import triton_steps
assert triton_steps.available(torch.zeros(1)), "interpreter mode expected"
CASES = [("lstm", s) for s in ("none", "semeniuta:p=0.3+zaremba:p=0.3", "zoneout+moon:p=0.2",
                                "output-zoneout:p=0.3+hidden-dropout:p=0.2",
                                "gal:p=0.3,p_recurrent=0.3")]
CASES += [("gru", s) for s in ("none", "semeniuta:p=0.3,sampling=sequence+zaremba:p=0.3",
                               "zoneout:p_cell=0,p_hidden=0.3+hidden-dropout:p=0.2",
                               "gal:p=0.3,p_recurrent=0.3")]
for cell, scheme in CASES:
    torch.manual_seed(0)
    ref = Recurrent(cell, 3, 4, num_layers=2, scheme=scheme, path="reference").double()
    fus = Recurrent(cell, 3, 4, num_layers=2, scheme=scheme, path="fused").double()
    fus.load_state_dict(ref.state_dict())
    for stochastic in (True, False):
        plan = ref.mask_plan()
        masks = (plan.sample(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
                 if stochastic else plan.expected(dtype=torch.float64))
        x = torch.randn(5, 3, 3, dtype=torch.float64)
        hx = tuple(torch.randn(2, 3, 4, dtype=torch.float64) for _ in range(2 if cell == "lstm" else 1))
        res = []
        for layer in (ref, fus):
            xi = x.clone().requires_grad_()
            hi = tuple(h.clone().requires_grad_() for h in hx)
            out, hn = layer(xi, hi if cell == "lstm" else hi[0], masks=masks)
            hn = hn if cell == "lstm" else (hn,)
            loss = out.sin().sum() + sum(h.square().sum() for h in hn) + out.sum()
            res.append([out, *hn, *torch.autograd.grad(loss, [xi, *hi, *layer.parameters()])])
        for u, v in zip(*res):
            torch.testing.assert_close(v, u, atol=1e-10, rtol=1e-8)
# batch-first input and a state given as a non-contiguous view
for cell in ("lstm", "gru"):
    torch.manual_seed(0)
    kw = dict(scheme="zoneout:p_cell=0,p_hidden=0.3+semeniuta:p=0.3", batch_first=True)
    ref = Recurrent(cell, 3, 4, num_layers=2, path="reference", **kw).double()
    fus = Recurrent(cell, 3, 4, num_layers=2, path="fused", **kw).double()
    fus.load_state_dict(ref.state_dict())
    masks = ref.mask_plan().sample(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = torch.randn(3, 5, 3, dtype=torch.float64)
    h0 = torch.randn(2, 4, 3, dtype=torch.float64).transpose(1, 2)  # [L, B, H], not contiguous
    res = []
    for layer in (ref, fus):
        hx = (h0, h0.flip(0)) if cell == "lstm" else h0
        out, _ = layer(x, hx, masks=masks)
        res.append([out, *torch.autograd.grad(out.sum(), list(layer.parameters()))])
    for u, v in zip(*res):
        torch.testing.assert_close(v, u, atol=1e-10, rtol=1e-8)
print("TRITON-OK")
"""


@pytest.mark.slow
def test_triton_step_kernels_under_interpreter():
    """The Triton LSTM and GRU step kernels (CUDA) equal the reference, run by Triton's CPU
    interpreter (``TRITON_INTERPRET=1``) in a subprocess."""
    pytest.importorskip("triton")
    import os
    import subprocess
    import sys
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run([sys.executable, "-c", _TRITON_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0 and "TRITON-OK" in res.stdout, res.stderr[-3000:]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fused_single_step_and_single_sample(cell):
    """T = 1 and B = 1 (no step before the first, one row in every product)."""
    torch.manual_seed(0)
    scheme = "zoneout:p_cell=0,p_hidden=0.3+hidden-dropout:p=0.2"
    ref = Recurrent(cell, 3, 4, scheme=scheme, path="reference").double()
    fus = Recurrent(cell, 3, 4, scheme=scheme, path="fused").double()
    fus.load_state_dict(ref.state_dict())
    for T, B in ((1, 3), (4, 1)):
        masks = ref.mask_plan().sample(T, B, generator=torch.Generator().manual_seed(T),
                                       dtype=torch.float64)
        x = torch.randn(T, B, 3, dtype=torch.float64)
        res = []
        for layer in (ref, fus):
            xi = x.clone().requires_grad_()
            out, _ = layer(xi, masks=masks)
            res.append([out, *torch.autograd.grad(out.sum(), [xi, *layer.parameters()])])
        for u, v in zip(*res):
            torch.testing.assert_close(v, u, **TOL)
