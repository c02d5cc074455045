"""Shared pieces of the asv suites: the scheme table, layer construction, one timed step,
the interleaved ratio to the ``torch.nn`` baseline, the per-benchmark preparation.

Benchmarks skip combinations that cannot run (a native path under an in-recurrence
scheme, CUDA without a GPU) by raising ``NotImplementedError`` in ``setup``, as asv expects.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Mapping, TypeVar

import torch
from torch import nn

from memloss.models import Recurrent
from memloss.models.paths import kernels, native_eligible

from .checkout import assert_measuring_checkout

__all__ = ["SCHEMES", "PATHS", "CELLS", "T", "THREADS_ENV", "bench_threads", "prepare",
           "make_layer", "fwd_bwd", "sync", "interleaved_times",
           "asv_samples"]

T = 35
CELLS = ("lstm", "gru")
#: benchmark label -> scheme text; rates as in the papers' PTB setups
SCHEMES = {
    "none": "none",
    "zaremba": "zaremba:p=0.5",
    "weight-drop": "weight-drop:p=0.5",
    "gal": "gal:p=0.25,p_recurrent=0.25",
    "semeniuta": "semeniuta:p=0.25,sampling=step",
    "moon": "moon:p=0.25,sampling=sequence",
    "zoneout": "zoneout:p_cell=0.5,p_hidden=0.05",
}
#: "torch.nn" is plain nn.LSTM/nn.GRU without dropout, the baseline of every ratio
PATHS = ("torch.nn", "native", "fused", "reference")
_TORCH = {"lstm": nn.LSTM, "gru": nn.GRU}
K = TypeVar("K")
#: torch intra-op threads of every benchmark (default 1: process CPU time, which the CPU
#: timings measure, counts idle OpenMP threads spinning at barriers when there are more)
THREADS_ENV = "MEMLOSS_BENCH_THREADS"


def bench_threads() -> int:
    """The pinned thread count: ``MEMLOSS_BENCH_THREADS`` (a positive integer), else 1."""
    threads = os.environ.get(THREADS_ENV, "1")
    if not threads.isdigit() or int(threads) < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive integer, got {threads!r}")
    return int(threads)


def prepare(device: str) -> torch.device:
    """What every benchmark's ``setup`` does first: check that the imported memloss is the
    commit asv stores the result under (:mod:`benchmarks.checkout`), pin torch's threads
    (:func:`bench_threads`), compile step kernels before their first step (unless
    ``MEMLOSS_COMPILE`` says otherwise), and return the device, or raise
    NotImplementedError (asv: skip) when it is absent."""
    assert_measuring_checkout()
    torch.set_num_threads(bench_threads())
    if "MEMLOSS_COMPILE" not in os.environ:  # time compiled kernels: built in the warm-up,
        kernels.COMPILE = "always"           # not in a background thread during the timing
    if device == "cuda" and not torch.cuda.is_available():
        raise NotImplementedError("no CUDA device")
    return torch.device(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_layer(cell: str, scheme: str, path: str, H: int, device: torch.device) -> nn.Module:
    """One layer (input size H) in training mode; raises NotImplementedError for a
    combination that cannot run."""
    if path == "torch.nn":
        if scheme != "none":
            raise NotImplementedError("the torch.nn baseline runs without a scheme")
        return _TORCH[cell](H, H).to(device).train()
    try:
        layer = Recurrent(cell, H, H, scheme=SCHEMES[scheme], path=path)
    except ValueError as e:  # e.g. moon on a GRU
        raise NotImplementedError(str(e)) from None
    if path == "native" and not native_eligible(layer.sites):
        raise NotImplementedError("the native path cannot run this scheme")
    return layer.to(device).train()


def fwd_bwd(layer: nn.Module, B: int, H: int, device: torch.device,
            seed: int = 0) -> Callable[[], None]:
    """A closure running forward + backward of ``layer`` on a fixed [T, B, H] input."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, H, generator=g).to(device).requires_grad_()
    w = torch.randn(T, B, H, generator=g).to(device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    is_ours = isinstance(layer, Recurrent)

    def run() -> None:
        out, _ = layer(x, generator=gen) if is_ours else layer(x)
        (out * w).sum().backward()
        layer.zero_grad(set_to_none=True)
        x.grad = None
        sync(device)

    return run


def interleaved_times(runs: Mapping[K, Callable[[], None]], rounds: int,
                      clock: Callable[[], float] = time.process_time) -> dict[K, list[float]]:
    """Seconds of ``clock`` that each call of ``runs`` takes, ``rounds`` times: every round
    runs each once, in the given order on even rounds and reversed on odd ones, so a load
    change on a shared machine and any order effect hit all of them alike. The per-round
    ratios ``times[k][i] / times[base][i]`` are then the steadiest comparison."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    order = list(runs)
    times: dict[K, list[float]] = {k: [] for k in order}
    for i in range(rounds):
        for k in (order if i % 2 == 0 else order[::-1]):
            t0 = clock()
            runs[k]()
            times[k].append(clock() - t0)
    return times


def asv_samples(values: list[float]) -> dict:
    """Return value of a ``track_`` benchmark that gives asv every sample, not one figure.

    asv's timing benchmarks hand their samples to asv as ``{"samples": [...], "number": n}``
    and asv stores the median with its 99% confidence interval and quartiles (and the
    samples, with ``--record-samples``); a tracked value returned in the same form is
    stored the same way, so ``asv compare``, ``asv continuous`` and ``benchmarks.compare``
    can tell its noise from a change. ``tests/benchmarks`` checks this against the
    installed asv."""
    if not values or not all(isinstance(v, (int, float)) for v in values):
        raise ValueError(f"asv_samples needs a non-empty list of numbers, got {values!r}")
    return {"samples": [float(v) for v in values], "number": 1}

