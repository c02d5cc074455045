"""Shared pieces of the asv suites: the scheme table, layer construction, one timed step.

Benchmarks skip combinations that cannot run (a native path under an in-recurrence
scheme, CUDA without a GPU) by raising ``NotImplementedError`` in ``setup``, as asv expects.
"""
from __future__ import annotations

import os
from typing import Callable

import torch
from torch import nn

from memloss.models import Recurrent
from memloss.models.paths import native_eligible

__all__ = ["SCHEMES", "PATHS", "CELLS", "T", "device_or_skip", "make_layer", "fwd_bwd", "sync"]

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


def device_or_skip(device: str) -> torch.device:
    """The device, or NotImplementedError (asv: skip) when it is absent. Also applies
    ``MEMLOSS_BENCH_THREADS`` (torch intra-op threads) when set, e.g. to 1 on a shared
    machine where two OpenMP threads wait on each other's descheduling."""
    threads = os.environ.get("MEMLOSS_BENCH_THREADS")
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise ValueError(f"MEMLOSS_BENCH_THREADS must be a positive integer, got {threads!r}")
        torch.set_num_threads(int(threads))
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
