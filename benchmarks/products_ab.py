"""Before and after the fused path's product choices (models/paths/products.py), in one
process: every fused scheme of the CPU table with a switch off and on, interleaved round by
round with ``torch.nn.LSTM`` (forward + backward, one thread, process CPU time).

    .venv/bin/python -m benchmarks.products_ab --hidden 650 --switch padding --fix onednn=never
    .venv/bin/python -m benchmarks.products_ab --hidden 256 --switch onednn --modes never always

Prints a markdown table: ratio of medians to ``nn.LSTM`` (IQR of the per-round ratios) per
scheme and mode. The same layer runs every mode; the switch is set before each call.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import torch

from memloss.models import Recurrent
from memloss.models.paths import kernels, products

from .common import fwd_bwd, interleaved_times
from .cpu_table import TABLE_SCHEMES, _pin, _quartiles

__all__ = ["main"]

SWITCHES = {"padding": "PADDING", "onednn": "ONEDNN"}


def _with(run: Callable[[], None], name: str, mode: str) -> Callable[[], None]:
    def call() -> None:
        setattr(products, name, mode)
        run()
    return call


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=650)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--switch", choices=list(SWITCHES), default="padding")
    ap.add_argument("--modes", nargs="+", choices=("never", "auto", "always"),
                    default=["never", "auto"])
    ap.add_argument("--fix", action="append", default=[], metavar="SWITCH=MODE",
                    help="hold another switch at a mode in every run, e.g. onednn=never")
    args = ap.parse_args(argv)
    for item in args.fix:
        key, _, mode = item.partition("=")
        if key not in SWITCHES or mode not in ("never", "auto", "always") or key == args.switch:
            ap.error(f"--fix {item!r}: give another switch ({', '.join(SWITCHES)}) = never, "
                     "auto or always")
        setattr(products, SWITCHES[key], mode)
    threads = torch.get_num_threads()
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        cpus = []
    try:
        _pin(1, cpus)
        _table(args)
    finally:  # a caller in the same process (a test) gets its threads and CPUs back
        torch.set_num_threads(threads)
        if cpus:
            os.sched_setaffinity(0, cpus)
    return 0


def _table(args: argparse.Namespace) -> None:
    dev, H, name = torch.device("cpu"), args.hidden, SWITCHES[args.switch]
    torch.manual_seed(0)
    runs = {("nn.LSTM", ""): fwd_bwd(torch.nn.LSTM(H, H).train(), args.batch, H, dev)}
    for label, spec in TABLE_SCHEMES.items():
        layer = Recurrent("lstm", H, H, scheme=spec).train()
        if layer.chosen_path() != "fused":
            continue
        run = fwd_bwd(layer, args.batch, H, dev)
        for mode in args.modes:
            runs[(label, mode)] = _with(run, name, mode)
    for run in runs.values():  # builds the kernels and measures the padding choices
        run()
    kernels.wait_compiled()
    started, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0]
    times = interleaved_times(runs, args.rounds)
    base = times[("nn.LSTM", "")]
    fixed = "".join(f", {f}" for f in args.fix)
    print(f"products.{name}{fixed}, H={H}, B={args.batch}, {args.rounds} rounds, started {started}, "
          f"load average {load:.1f}-{os.getloadavg()[0]:.1f}, nn.LSTM median "
          f"{1e3 * statistics.median(base):.1f} ms")
    print("| scheme [fused] | " + " | ".join(args.modes) + " |")
    print("|---|" + "---|" * len(args.modes))
    for label in dict.fromkeys(k for k, _ in times if k != "nn.LSTM"):
        cells = []
        for mode in args.modes:
            ts = times[(label, mode)]
            q1, q3 = _quartiles([t / b for t, b in zip(ts, base)])
            cells.append(f"{statistics.median(ts) / statistics.median(base):.2f} "
                         f"({q1:.2f}-{q3:.2f})")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
