"""pytest-benchmark micro benchmarks: one recurrent step (T = 1), forward+backward, per
cell x scheme x path (float32, CPU, H=256, B=32): the per-step cost of a path while a
kernel is being changed. Whole sequences and the ratio to ``torch.nn`` are asv's
(``benchmarks/bench_layer.py``). Process CPU time, torch pinned to
``MEMLOSS_BENCH_THREADS`` threads (default 1), as in the asv suites."""
from __future__ import annotations

import time

import pytest
import torch

from benchmarks.common import bench_threads
from memloss.models import Recurrent
from memloss.models.paths import kernels, native_eligible

H, B = 256, 32
SCHEMES = {"none": "none", "semeniuta": "semeniuta:p=0.25", "zoneout-hidden":
           "zoneout:p_cell=0,p_hidden=0.1", "gal": "gal:p=0.25,p_recurrent=0.25"}
CASES = [(c, s, p) for c in ("lstm", "gru") for s in SCHEMES for p in ("native", "fused", "reference")]


@pytest.fixture(autouse=True)
def _pinned_threads(monkeypatch):
    before = torch.get_num_threads()
    torch.set_num_threads(bench_threads())
    # time the compiled step kernels: built before the first step, not in the background
    monkeypatch.setattr(kernels, "COMPILE", "always")
    yield
    torch.set_num_threads(before)


@pytest.mark.benchmark(group="step", timer=time.process_time)
@pytest.mark.parametrize("cell,scheme,path", CASES)
def test_one_step(benchmark, cell, scheme, path):
    layer = Recurrent(cell, H, H, scheme=SCHEMES[scheme], path=path).train()
    if path == "native" and not native_eligible(layer.sites):
        pytest.skip("the native path cannot run this scheme")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, B, H, generator=g, requires_grad=True)
    masks = layer.mask_plan().sample(1, B, generator=g)

    def run() -> torch.Tensor:
        out, _ = layer(x, masks=masks)
        out.sum().backward()
        return out

    out = benchmark(run)
    assert out.shape == (1, B, H) and torch.isfinite(out).all()
