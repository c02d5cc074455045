"""Semeniuta section 3.2, checked analytically on the real layer.

All gates forced to 1 (huge biases, zero weights) and g_t = 1: the cell state is a running
sum. Under cell dropout (Moon) at test time with the expectation convention, c_t follows
eq. 17, sum_{i=0..t} p^(t-i+1) (p = keep probability); under update dropout (Semeniuta)
eq. 19, p * (t+1). Under the inverted convention (eq. 18) the same argument shows up in
training: kept cell units grow as sum p^-(t-i+1), while update dropout stays linear.
"""
from __future__ import annotations

import pytest
import torch

from memloss.models import Recurrent

T, DROP = 10, 0.3
KEEP = 1 - DROP


def _open_gates(scheme: str) -> Recurrent:
    layer = Recurrent("lstm", 1, 3, scheme=scheme, path="reference").double().eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        layer.bias_ih_l0.fill_(50.0)  # i, f, g, o saturate at 1
    return layer


def _eq17(t: int) -> float:
    return sum(KEEP ** (t - i + 1) for i in range(t + 1))


def _eq19(t: int) -> float:
    return KEEP * (t + 1)


def _cells(layer, masks=None):
    """c_t for every t (running the layer one step at a time to read the cell state)."""
    x = torch.zeros(T, 2, 1, dtype=torch.float64)
    h = torch.zeros(1, 2, 3, dtype=torch.float64)
    c = torch.zeros_like(h)
    out = []
    for t in range(T):
        step = None if masks is None else {k: (v[t:t + 1] if v.dim() == 3 else v)
                                            for k, v in masks.items()}
        _, (h, c) = layer(x[t:t + 1], (h, c), masks=step)
        out.append(c[0])
    return torch.stack(out)  # [T, B, H]


@pytest.mark.parametrize("sampling", ["sequence", "step"])
def test_cell_dropout_at_test_time_follows_eq17(sampling):
    layer = _open_gates(f"moon:p={DROP},sampling={sampling},scaling=expectation")
    c = _cells(layer)
    want = torch.tensor([_eq17(t) for t in range(T)], dtype=torch.float64)
    torch.testing.assert_close(c[:, 0, 0], want, rtol=0, atol=1e-12)
    assert c[-1, 0, 0] < 1 / (1 - KEEP), "memory is bounded: the past is forgotten"


@pytest.mark.parametrize("sampling", ["sequence", "step"])
def test_update_dropout_at_test_time_follows_eq19(sampling):
    layer = _open_gates(f"semeniuta:p={DROP},sampling={sampling},scaling=expectation")
    c = _cells(layer)
    want = torch.tensor([_eq19(t) for t in range(T)], dtype=torch.float64)
    torch.testing.assert_close(c[:, 0, 0], want, rtol=0, atol=1e-12)


def test_inverted_convention_cell_dropout_grows_exponentially_in_training():
    layer = _open_gates(f"moon:p={DROP},sampling=sequence")
    plan = layer.mask_plan()
    kept = {k: torch.full(e.full_shape(1, 2), 1 / KEEP, dtype=torch.float64)
            for k, e in zip(plan.keys(), plan.entries)}  # every unit kept, scaled by 1/p
    c = _cells(layer, kept)
    want = torch.tensor([sum(KEEP ** -(t - i + 1) for i in range(t + 1)) for t in range(T)],
                        dtype=torch.float64)
    torch.testing.assert_close(c[:, 0, 0], want, rtol=1e-12, atol=0)
    # at test time the inverted convention uses no factor: the sum is t+1
    torch.testing.assert_close(_cells(layer)[:, 0, 0],
                               torch.arange(1, T + 1, dtype=torch.float64), rtol=0, atol=1e-12)


def test_inverted_convention_update_dropout_stays_linear_in_training():
    layer = _open_gates(f"semeniuta:p={DROP},sampling=sequence")
    plan = layer.mask_plan()
    kept = {k: torch.full(e.full_shape(1, 2), 1 / KEEP, dtype=torch.float64)
            for k, e in zip(plan.keys(), plan.entries)}
    c = _cells(layer, kept)
    torch.testing.assert_close(c[:, 0, 0], torch.arange(1, T + 1, dtype=torch.float64) / KEEP,
                               rtol=1e-12, atol=0)
