"""Peak host memory (asv ``peakmem_``, process RSS) and peak GPU memory (``track_``)."""
from __future__ import annotations

import torch

from .common import PATHS, SCHEMES, device_or_skip, fwd_bwd, make_layer

_SIZES = dict(hidden=650, batch=32)


class PeakHostMemory:
    """Peak resident memory of a process that builds a layer and runs forward+backward."""

    params = (["lstm"], list(SCHEMES), list(PATHS))
    param_names = ["cell", "scheme", "path"]
    timeout = 300

    def setup(self, cell: str, scheme: str, path: str) -> None:
        self.layer = make_layer(cell, scheme, path, _SIZES["hidden"], device_or_skip("cpu"))

    def peakmem_forward_backward(self, cell: str, scheme: str, path: str) -> None:
        fwd_bwd(self.layer, _SIZES["batch"], _SIZES["hidden"], torch.device("cpu"))()


class GPUMemory:
    """Peak CUDA memory allocated by one forward+backward (bytes); needs a GPU."""

    params = (["lstm", "gru"], list(SCHEMES), list(PATHS))
    param_names = ["cell", "scheme", "path"]
    unit = "bytes"
    timeout = 300

    def setup(self, cell: str, scheme: str, path: str) -> None:
        self.device = device_or_skip("cuda")
        self.layer = make_layer(cell, scheme, path, _SIZES["hidden"], self.device)

    def track_peak_gpu_memory(self, cell: str, scheme: str, path: str) -> int:
        run = fwd_bwd(self.layer, _SIZES["batch"], _SIZES["hidden"], self.device)
        run()
        torch.cuda.reset_peak_memory_stats(self.device)
        base = torch.cuda.memory_allocated(self.device)
        run()
        return int(torch.cuda.max_memory_allocated(self.device) - base)
