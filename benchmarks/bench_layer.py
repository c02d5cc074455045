"""Forward+backward time of one recurrent layer: cell x scheme x path x size x device."""
from __future__ import annotations

from .common import CELLS, PATHS, SCHEMES, device_or_skip, fwd_bwd, make_layer


class TimeLayer:
    """``T = 35``; H and B as in the PTB setups (small/medium/large, batch 20/32/128)."""

    params = (list(CELLS), list(SCHEMES), list(PATHS), [256, 650, 1500], [20, 32, 128],
              ["cpu", "cuda"])
    param_names = ["cell", "scheme", "path", "hidden", "batch", "device"]
    timeout = 600
    warmup_time = 0.0
    number = 1

    def setup(self, cell: str, scheme: str, path: str, hidden: int, batch: int,
              device: str) -> None:
        dev = device_or_skip(device)
        layer = make_layer(cell, scheme, path, hidden, dev)
        self.run = fwd_bwd(layer, batch, hidden, dev)
        self.run()  # warm-up outside the timing

    def time_forward_backward(self, *args: object) -> None:
        self.run()
