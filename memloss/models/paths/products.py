"""Matrix products of the fused path: MKL's with output rows padded where that is faster, and
oneDNN's with packed weights where those are faster.

**Padded output rows.** On the CPU the fused path's products over all ``T x B`` rows (the
input product's backward, the per-gate products of untied masks, the per-gate
recurrent-weight gradient) have an output row of ``I`` or ``H`` values. For some widths
MKL's ``sgemm`` runs much slower than for the next multiple of 16: measured here (one
thread, ``[1120, 4H] x [4H, H]``, docs/performance.md) H = 650 and 1500, the papers' medium
and large sizes, take 19-29% less time with the second factor's columns padded with zeros
to 656 and 1504, while at H = 100, 300, 500 and 1000 padding was between 8% faster and 12%
slower. No rule of the width alone says which, so :func:`mm` measures both once per shape
and process (the smaller of three alternating wall times; about six extra products, at the
first backward) and keeps the faster one.

Padding changes no number: each output value is the same sum over the same factors (MKL
blocks the inner dimension alike; checked bit for bit at every width above, and by the
tests), so which one a process picks does not change results, and a resumed run computes
what the first process did. Products under :data:`MIN_FLOPS` (MKL's small-matrix path,
where padding never paid) and on other devices are plain ``torch.mm``.

**oneDNN.** On a CPU with AVX-512 (torch's CPU capability ``AVX512``), oneDNN's products
with the weight packed once (``torch.ops.mkldnn._reorder_linear_weight`` and
``_linear_pointwise``, what Inductor's CPU lowering uses; the kernel ``torch.nn.LSTM`` runs
is oneDNN's too) ran the fused path's large float32 products faster than MKL here (one
thread, AMD EPYC with AVX-512, docs/performance.md): the input product ``[1120, 650] x
[650, 2600]`` 39 against 48 ms, the per-step products ``[32, 650] x [650, 2600]`` and ``[32,
2600] x [2600, 650]`` 1.1 and 1.0 against 1.4 and 1.5 ms (the weight packed once per
sequence; per gate block under untied masks too); at H = 256 the per-step products were
no faster (35 of them: 9.2 against 9.0 ms, the accumulate fused or not) while the input
product over ``T x B`` rows was (6.9 against 7.6 ms, its weight packed each call), so there
only the input product takes oneDNN; at H = 128 and 64 oneDNN was slower. Which one
runs is a fixed rule of the hardware and the product's size (:func:`use_onednn`), never a
timing, because oneDNN's numbers differ from MKL's in the last bits: a run resumed on the
same machine computes what it did before. :data:`ONEDNN` forces either for tests and
benchmarks.
"""
from __future__ import annotations

import functools
import logging
import time
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["mm", "PADDING", "ALIGN", "MIN_FLOPS", "choices", "ONEDNN", "ONEDNN_MIN_WEIGHT",
           "ONEDNN_MANY_ROWS", "ONEDNN_MIN_WEIGHT_MANY_ROWS", "use_onednn", "pack",
           "packed_linear"]

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
            if pad:
                _padded(a, b)
            else:
                torch.mm(a, b)
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


#: ``"auto"``: oneDNN where :func:`use_onednn`'s rule says; ``"never"``/``"always"``: for
#: tests and benchmarks (``"always"`` still needs oneDNN and float32 on the CPU)
ONEDNN: Literal["auto", "never", "always"] = "auto"
#: the smallest weight (K x N values) oneDNN takes under ``"auto"``: whole layers measured
#: here (docs/performance.md) ran 0.07-0.14x of ``nn.LSTM``'s time faster with oneDNN at
#: H = 650 (an LSTM's weights of 650 x 2600), alike at H = 256 (256 x 1024) and 0.17-0.18x
#: slower at H = 128; untied masks' per-gate blocks of 650 x 650 ran faster (35 steps of the
#: four blocks' products: 41.8 against 48.1 ms forward, 40.5 against 52.3 ms backward), of
#: 256 x 256 slower (9.5 against 7.7, 8.8 against 6.7)
ONEDNN_MIN_WEIGHT = 400_000
#: products of at least this many rows (an input product's ``T x B``; a step's ``B`` only in
#: so large a batch) take oneDNN from the smaller weight :data:`ONEDNN_MIN_WEIGHT_MANY_ROWS`:
#: the input product ``[1120, 256] x [256, 1024]`` ran 6.9 against 7.6 ms with its weight
#: packed each call, ``[700, 256] x [256, 1024]`` and ``[1120, 128] x [128, 512]`` alike
#: (docs/performance.md)
ONEDNN_MANY_ROWS = 1024
ONEDNN_MIN_WEIGHT_MANY_ROWS = 200_000


@functools.lru_cache(maxsize=None)
def _onednn_here() -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    return (torch.backends.mkldnn.is_available() and hasattr(ops, "_linear_pointwise")
            and hasattr(ops, "_reorder_linear_weight"))


def use_onednn(m: int, k: int, n: int, like: Tensor) -> bool:
    """Whether an ``[m, k] x [k, n]`` product of tensors like ``like`` runs on oneDNN: float32
    on a CPU where oneDNN is built in, outside CPU autocast, and under ``"auto"`` a CPU
    capability of AVX-512 and a weight of at least :data:`ONEDNN_MIN_WEIGHT` values
    (:data:`ONEDNN_MIN_WEIGHT_MANY_ROWS` for products of :data:`ONEDNN_MANY_ROWS` rows or
    more)."""
    if ONEDNN == "never" or like.device.type != "cpu" or like.dtype != torch.float32:
        return False
    if torch.is_autocast_enabled("cpu"):  # F.linear would compute in the autocast dtype
        return False
    if not _onednn_here():
        return False
    if ONEDNN == "always":
        return True
    least = ONEDNN_MIN_WEIGHT_MANY_ROWS if m >= ONEDNN_MANY_ROWS else ONEDNN_MIN_WEIGHT
    return k * n >= least and torch.backends.cpu.get_cpu_capability() == "AVX512"


def pack(w: Tensor, rows: int) -> Tensor:
    """``w`` ([N, K], a ``linear`` weight) packed for oneDNN products of ``rows`` rows."""
    return torch.ops.mkldnn._reorder_linear_weight(w.contiguous(), rows)


def packed_linear(a: Tensor, packed: Tensor, bias: Tensor | None = None) -> Tensor:
    """``a W^T (+ bias)`` with ``W`` packed by :func:`pack` (a new [M, N] tensor)."""
    return torch.ops.mkldnn._linear_pointwise(a, packed, bias, "none", [], "")
