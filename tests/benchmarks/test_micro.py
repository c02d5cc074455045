"""pytest-benchmark micro benchmarks: one recurrent step and one sequence, forward+backward,
per cell x scheme x path (float32, CPU; H=256, B=32, T=35 for the sequence)."""
from __future__ import annotations

import pytest
import torch

from memloss.models import Recurrent
from memloss.models.paths import native_eligible

H, B, T = 256, 32, 35
SCHEMES = {"none": "none", "semeniuta": "semeniuta:p=0.25", "zoneout-hidden":
           "zoneout:p_cell=0,p_hidden=0.1", "gal": "gal:p=0.25,p_recurrent=0.25"}
CASES = [(c, s, p) for c in ("lstm", "gru") for s in SCHEMES for p in ("native", "fused", "reference")]


def _closure(cell: str, scheme: str, path: str, steps: int):
    layer = Recurrent(cell, H, H, scheme=SCHEMES[scheme], path=path).train()
    if path == "native" and not native_eligible(layer.sites):
        pytest.skip("the native path cannot run this scheme")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps, B, H, generator=g, requires_grad=True)
    masks = layer.mask_plan().sample(steps, B, generator=g)

    def run() -> torch.Tensor:
        out, _ = layer(x, masks=masks)
        out.sum().backward()
        return out

    return layer, run


@pytest.mark.benchmark(group="step")
@pytest.mark.parametrize("cell,scheme,path", CASES)
def test_one_step(benchmark, cell, scheme, path):
    _, run = _closure(cell, scheme, path, 1)
    out = benchmark(run)
    assert out.shape == (1, B, H) and torch.isfinite(out).all()


@pytest.mark.benchmark(group="sequence")
@pytest.mark.parametrize("cell,scheme,path", CASES)
def test_one_sequence(benchmark, cell, scheme, path):
    _, run = _closure(cell, scheme, path, T)
    out = benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    assert out.shape == (T, B, H) and torch.isfinite(out).all()


@pytest.mark.benchmark(group="sequence")
def test_one_sequence_torch_lstm(benchmark):
    """The baseline of docs/performance.md: torch.nn.LSTM without dropout."""
    layer = torch.nn.LSTM(H, H)
    x = torch.randn(T, B, H, requires_grad=True)

    def run() -> torch.Tensor:
        out, _ = layer(x)
        out.sum().backward()
        return out

    out = benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    assert out.shape == (T, B, H)
