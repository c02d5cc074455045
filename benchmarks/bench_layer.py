"""Forward+backward time of one recurrent layer: cell x scheme x path x size x device,
absolute (``TimeLayer``) and as a ratio to the ``torch.nn`` baseline (``RatioToTorchNN``).

CPU timings are process CPU time with torch pinned to ``MEMLOSS_BENCH_THREADS`` threads
(default 1): other jobs on a shared machine change the wall-clock time of a call several
fold, its CPU time far less. CUDA timings are wall-clock around a synchronized call.
"""
from __future__ import annotations

import time

from .common import CELLS, PATHS, SCHEMES, asv_samples, fwd_bwd, interleaved_times, make_layer, prepare

_SIZES = dict(hidden=[256, 650, 1500], batch=[20, 32, 128])


class TimeLayer:
    """``T = 35``; H and B as in the PTB setups (small/medium/large, batch 20/32/128)."""

    params = (list(CELLS), list(SCHEMES), list(PATHS), _SIZES["hidden"], _SIZES["batch"],
              ["cpu", "cuda"])
    param_names = ["cell", "scheme", "path", "hidden", "batch", "device"]
    timeout = 600
    warmup_time = 0.0
    number = 1
    #: (least, most) samples per process, and the seconds after which asv stops adding
    repeat = (5, 15, 20.0)
    timer = time.process_time  # setup switches to wall-clock for CUDA

    def setup(self, cell: str, scheme: str, path: str, hidden: int, batch: int,
              device: str) -> None:
        dev = prepare(device)
        if dev.type == "cuda":
            self.timer = time.perf_counter  # the GPU's time is not this process's CPU time
        layer = make_layer(cell, scheme, path, hidden, dev)
        self.run = fwd_bwd(layer, batch, hidden, dev)
        self.run()  # warm-up outside the timing

    def time_forward_backward(self, *args: object) -> None:
        self.run()


class RatioToTorchNN:
    """Time of the layer / time of plain ``torch.nn.LSTM``/``GRU`` (no dropout, same cell,
    sizes and device), one per round of interleaved calls in the same process: the figure
    the speed targets are stated in, and one a machine-wide slowdown leaves alone. asv
    stores the median of the rounds with its interval (see ``asv_samples``)."""

    params = (list(CELLS), list(SCHEMES), [p for p in PATHS if p != "torch.nn"],
              _SIZES["hidden"], _SIZES["batch"], ["cpu", "cuda"])
    param_names = ["cell", "scheme", "path", "hidden", "batch", "device"]
    timeout = 900
    #: interleaved rounds: at least ``ratio_rounds[0]``, then two more at a time while the
    #: rounds so far took less than ``ratio_rounds[2]`` seconds, at most ``ratio_rounds[1]``
    ratio_rounds = (10, 24, 10.0)
    unit = "ratio to torch.nn"

    def setup(self, cell: str, scheme: str, path: str, hidden: int, batch: int,
              device: str) -> None:
        dev = prepare(device)
        self.clock = time.perf_counter if dev.type == "cuda" else time.process_time
        layer = make_layer(cell, scheme, path, hidden, dev)
        self.runs = {"base": fwd_bwd(make_layer(cell, "none", "torch.nn", hidden, dev), batch,
                                     hidden, dev),
                     "layer": fwd_bwd(layer, batch, hidden, dev)}
        for run in self.runs.values():
            run()  # warm-up

    def track_ratio_to_torch_nn(self, *args: object) -> dict:
        least, most, budget = self.ratio_rounds
        t0 = self.clock()
        times = interleaved_times(self.runs, least, self.clock)
        while len(times["base"]) < most and self.clock() - t0 < budget:
            for k, ts in interleaved_times(self.runs, 2, self.clock).items():
                times[k] += ts
        return asv_samples([r / b for r, b in zip(times["layer"], times["base"])])
