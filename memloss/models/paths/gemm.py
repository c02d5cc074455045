"""Matrix products of the fused path with a weight that is reused for many calls.

On CPU, ``torch.nn.LSTM`` runs oneDNN's RNN kernels, whose matrix products are oneDNN
GEMMs on a prepacked weight. The fused path uses the same library for its per-step and
big products when it can (float32 CPU tensors, torch built with mkldnn, mkldnn enabled):
on the AMD EPYC we measured (H=650, one thread) MKL reached 68 GFLOP/s on the per-step
product and 62-86 on the T x B products, oneDNN with a prepacked weight 90 and 107
(docs/performance.md). Everywhere else (float64, CUDA, a torch
without mkldnn) it is plain ``torch.addmm``/``F.linear``. Set ``ONEDNN = False`` to force
the plain products (tests compare both against the reference path).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Linear", "onednn_usable", "ONEDNN"]

#: use oneDNN prepacked GEMMs for float32 on CPU when available
ONEDNN = True
_OPS = getattr(torch.ops, "mkldnn", None)
_LP = getattr(_OPS, "_linear_pointwise", None) if _OPS is not None else None
_REORDER = getattr(_OPS, "_reorder_linear_weight", None) if _OPS is not None else None


def onednn_usable(t: Tensor) -> bool:
    """True when a product with ``t`` may go through oneDNN."""
    return (ONEDNN and _LP is not None and _REORDER is not None and t.device.type == "cpu"
            and t.dtype == torch.float32 and torch.backends.mkldnn.is_available()
            and torch._C._get_mkldnn_enabled())


class Linear:
    """``y = x w^T (+ bias)`` for a fixed ``w`` ([N, K]) and a batch of about ``batch`` rows;
    the weight is packed once here (a copy: repack after changing ``w``)."""

    def __init__(self, w: Tensor, batch: int) -> None:
        self.w = w
        self.packed = _REORDER(w.contiguous(), batch) if onednn_usable(w) else None

    def __call__(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        if self.packed is not None:
            return _LP(x.contiguous(), self.packed, bias, "none", [], "")
        return F.linear(x, self.w, bias)

    def add(self, x: Tensor, other: Tensor) -> Tensor:
        """``x w^T + other``; ``other`` is a 1-D bias or a tensor shaped like the result."""
        if self.packed is not None:
            if other.dim() == 1:
                return _LP(x.contiguous(), self.packed, other, "none", [], "")
            return _LP.binary(x.contiguous(), other.contiguous(), self.packed, None, "add")
        return torch.addmm(other, x, self.w.t())
