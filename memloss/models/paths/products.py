"""Matrix products of the fused path that MKL runs faster with their output rows padded.

On the CPU the fused path's products over all ``T x B`` rows (the input product's backward,
the per-gate products of untied masks, the per-gate recurrent-weight gradient) have an
output row of ``I`` or ``H`` values. For some widths MKL's ``sgemm`` runs much slower than
for the next multiple of 16: measured here (one thread, ``[1120, 4H] x [4H, H]``,
docs/performance.md) H = 650 and 1500, the papers' medium and large sizes, take 19-29% less
time with the second factor's columns padded with zeros to 656 and 1504, while H = 100,
300, 500 and 1000 take 1-12% more. No rule of the width alone says which, so :func:`mm`
measures both once per shape and process (the smaller of three alternating wall times;
about six extra products, at the first backward) and keeps the faster one.

Padding changes no number: each output value is the same sum over the same factors (MKL
blocks the inner dimension alike; checked bit for bit at every width above, and by the
tests), so which one a process picks does not change results, and a resumed run computes
what the first process did. Products under :data:`MIN_FLOPS` (MKL's small-matrix path,
where padding never paid) and on other devices are plain ``torch.mm``.
"""
from __future__ import annotations

import logging
import time
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["mm", "PADDING", "ALIGN", "MIN_FLOPS", "choices"]

log = logging.getLogger(__name__)

#: ``"auto"``: measure once per shape (above); ``"never"``/``"always"``: for tests and
#: benchmarks
PADDING: Literal["auto", "never", "always"] = "auto"
#: output rows are padded to a multiple of this many values
ALIGN = 16
#: products of fewer floating-point operations (2 M K N) are never padded
MIN_FLOPS = 5e7

_CHOICE: dict[tuple, bool] = {}


def choices() -> dict[tuple, bool]:
    """The choices made so far in this process: shape key -> padded."""
    return dict(_CHOICE)


def _padded(a: Tensor, b: Tensor) -> Tensor:
    n = b.shape[1]
    return torch.mm(a, F.pad(b, (0, -(-n // ALIGN) * ALIGN - n)))[:, :n]


def _padding_pays(a: Tensor, b: Tensor) -> bool:
    best = {False: float("inf"), True: float("inf")}
    for _ in range(3):
        for pad in (False, True):
            start = time.perf_counter()
            _padded(a, b) if pad else torch.mm(a, b)
            best[pad] = min(best[pad], time.perf_counter() - start)
    return best[True] < best[False]


def mm(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """``a @ b`` (into ``out`` when given, which may be strided), with ``b``'s columns padded
    to a multiple of :data:`ALIGN` where that was measured faster for this shape."""
    M, K = a.shape
    N = b.shape[1]
    if (PADDING == "never" or a.device.type != "cpu" or N % ALIGN == 0
            or 2.0 * M * K * N < MIN_FLOPS):
        return torch.mm(a, b) if out is None else torch.mm(a, b, out=out)
    key = (M, K, N, a.stride(), b.stride(), a.dtype, torch.get_num_threads())
    pad = True if PADDING == "always" else _CHOICE.get(key)
    if pad is None:
        pad = _CHOICE[key] = _padding_pays(a, b)
        log.debug("product [%d, %d] x [%d, %d]: %s", M, K, K, N,
                  f"output rows padded to {-(-N // ALIGN) * ALIGN}" if pad else "as it is")
    if not pad:
        return torch.mm(a, b) if out is None else torch.mm(a, b, out=out)
    result = _padded(a, b)
    return result.contiguous() if out is None else out.copy_(result)
