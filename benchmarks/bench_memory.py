"""Peak bytes of the tensors one forward+backward allocates, on CPU and CUDA (see
:mod:`benchmarks.peak`): exact figures, so the gate compares them without an interval."""
from __future__ import annotations

from .common import CELLS, PATHS, SCHEMES, fwd_bwd, make_layer, prepare
from .peak import peak_bytes

_SIZES = dict(hidden=650, batch=32)


class PeakMemory:
    """H = 650, B = 32, T = 35; every cell x scheme x path; CUDA skipped without a GPU."""

    params = (list(CELLS), list(SCHEMES), list(PATHS), ["cpu", "cuda"])
    param_names = ["cell", "scheme", "path", "device"]
    unit = "bytes"
    timeout = 300

    def setup(self, cell: str, scheme: str, path: str, device: str) -> None:
        self.device = prepare(device)
        layer = make_layer(cell, scheme, path, _SIZES["hidden"], self.device)
        self.run = fwd_bwd(layer, _SIZES["batch"], _SIZES["hidden"], self.device)
        self.run()  # warm-up: lazily built caches are not the call's memory

    def track_peak_bytes(self, *args: object) -> int:
        return peak_bytes(self.run, self.device)
