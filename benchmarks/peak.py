"""Peak bytes of the tensors one call allocates, on CPU and on CUDA; deterministic for a
given code path, so a change of a single byte is a change of the code, not noise.

* CUDA: ``torch.cuda.max_memory_allocated`` above what was allocated before the call.
* CPU: the default CPU allocator keeps no statistics and the process RSS hides a layer's
  tensors behind the interpreter and the allocator's caches, so :class:`LiveTensorBytes`
  (a ``TorchDispatchMode``) sees every ATen operator the call runs, forward and backward,
  counts each new storage its outputs hold until that storage is freed, and keeps the
  maximum. Opaque tensors (oneDNN's packed weights) have no storage to count and are left
  out; tensors created before the call (parameters, inputs) are not counted.

Not an asv benchmark module (asv collects nothing here).
"""
from __future__ import annotations

import weakref
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["LiveTensorBytes", "peak_bytes"]


def _storage(t: torch.Tensor) -> torch.UntypedStorage | None:
    try:
        return t.untyped_storage()
    except NotImplementedError:  # opaque tensor (oneDNN layout): no storage to count
        return None


class LiveTensorBytes(TorchDispatchMode):
    """While active: ``current`` bytes of the CPU storages created since it was entered
    and still alive, and their maximum ``peak``."""

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._live: dict[int, int] = {}

    def _freed(self, key: int) -> None:
        self.current -= self._live.pop(key, 0)

    def _count(self, t: torch.Tensor, arguments: set[int]) -> None:
        storage = _storage(t)
        if storage is None:
            return
        key = storage.data_ptr()
        if key == 0 or key in self._live or key in arguments:  # empty, known, or a view
            return
        self._live[key] = storage.nbytes()
        self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._freed, key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # an operator writing in place (add_, out=) or returning a view hands back the
        # storage of an argument: not a new allocation
        arguments = {s.data_ptr() for a in tree_flatten((args, kwargs))[0]
                     if isinstance(a, torch.Tensor) and (s := _storage(a)) is not None}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                self._count(t, arguments)
        return out


def peak_bytes(run: Callable[[], None], device: torch.device) -> int:
    """Peak bytes of the tensors that one ``run()`` allocates on ``device`` (above what
    was allocated when it started)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    if device.type != "cpu":
        raise ValueError(f"peak_bytes measures cpu or cuda, got {device}")
    with LiveTensorBytes() as meter:
        run()
    return meter.peak
