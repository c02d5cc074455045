"""The asv suites' building blocks: skips for impossible combinations, the timed closure,
and the quality tracker's determinism."""
from __future__ import annotations

import pytest
import torch

from benchmarks import common
from benchmarks.bench_layer import TimeLayer
from benchmarks.bench_quality import train_delayed_recall


@pytest.mark.parametrize("cell,scheme,path,device", [
    ("lstm", "semeniuta", "native", "cpu"),   # in-recurrence mask: no native kernel
    ("gru", "moon", "fused", "cpu"),          # moon needs a cell state
    ("lstm", "gal", "torch.nn", "cpu"),       # the baseline has no scheme
])
def test_impossible_combinations_skip(cell, scheme, path, device):
    with pytest.raises(NotImplementedError):
        common.make_layer(cell, scheme, path, 8, torch.device(device))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the skip without CUDA")
def test_cuda_benchmarks_skip_without_a_gpu():
    with pytest.raises(NotImplementedError, match="CUDA"):
        TimeLayer().setup("lstm", "none", "fused", 8, 2, "cuda")


def test_bad_thread_setting_is_rejected(monkeypatch):
    monkeypatch.setenv("MEMLOSS_BENCH_THREADS", "two")
    with pytest.raises(ValueError, match="MEMLOSS_BENCH_THREADS"):
        common.device_or_skip("cpu")


@pytest.mark.parametrize("path", ["torch.nn", "native", "fused", "reference"])
def test_fwd_bwd_closure_runs_and_clears_gradients(path):
    layer = common.make_layer("lstm", "none", path, 8, torch.device("cpu"))
    run = common.fwd_bwd(layer, 2, 8, torch.device("cpu"))
    run()
    assert all(p.grad is None for p in layer.parameters())


@pytest.mark.slow
def test_quality_tracker_is_deterministic_and_learns():
    a = train_delayed_recall("lstm", "semeniuta:p=0.1")
    b = train_delayed_recall("lstm", "semeniuta:p=0.1")
    assert a == b
    assert a["error_rate"] < 0.5 and a["perplexity"] < 4.0  # chance: 7/8 errors, ppl 8
