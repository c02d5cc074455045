"""The CPU table of docs/performance.md: forward+backward time of every scheme against
``torch.nn.LSTM`` without dropout, measured in one run.

    .venv/bin/python -m benchmarks.cpu_table --hidden 256 650 --rounds 7
    .venv/bin/python -m benchmarks.cpu_table --threads 2 --clock wall

Configurations are interleaved round by round (baseline, scheme 1, scheme 2, ..., the
order reversed every other round) so a load change on a shared machine hits all of them; each figure is the median over rounds
and the ratio column is the median of the per-round ratios, with its quartiles as the
noise. The default ``--clock cpu --threads 1`` measures process CPU time of one thread,
far less disturbed by other processes on a shared machine than wall-clock time (with
several threads, idle OpenMP threads spinning at barriers count as CPU time). Not an asv
benchmark (asv collects nothing from this module).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from memloss.models import Recurrent

from .common import T, fwd_bwd, interleaved_times

__all__ = ["TABLE_SCHEMES", "measure", "main"]

#: label -> scheme text (paper PTB rates); every scheme of the registry valid for an LSTM
TABLE_SCHEMES = {
    "none": "none",
    "zaremba": "zaremba:p=0.5",
    "weight-drop": "weight-drop:p=0.5",
    "gal (tied)": "gal:p=0.25,p_recurrent=0.25",
    "gal (untied)": "gal:p=0.25,p_recurrent=0.25,tied=false",
    "moon": "moon:p=0.25",
    "hidden-dropout": "hidden-dropout:p=0.25",
    "semeniuta (step)": "semeniuta:p=0.25,sampling=step",
    "semeniuta (sequence)": "semeniuta:p=0.25,sampling=sequence",
    "zoneout": "zoneout:p_cell=0.5,p_hidden=0.05",
    "output-zoneout": "output-zoneout:p=0.25",
    "semeniuta+zaremba": "semeniuta:p=0.25+zaremba:p=0.5",
}


def _quartiles(xs: list[float]) -> tuple[float, float]:
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def measure(hidden: int, batch: int, rounds: int, paths: tuple[str, ...],
            clock: str = "cpu") -> list[dict]:
    """Rows (scheme, path, chosen path, median ms, ratio and its quartiles)."""
    dev = torch.device("cpu")
    torch.manual_seed(0)
    runs = {("torch.nn.LSTM", "baseline"): fwd_bwd(torch.nn.LSTM(hidden, hidden).train(),
                                                   batch, hidden, dev)}
    chosen = {("torch.nn.LSTM", "baseline"): "torch.nn"}
    for label, spec in TABLE_SCHEMES.items():
        for path in paths:
            layer = Recurrent("lstm", hidden, hidden, scheme=spec, path=path).train()
            runs[(label, path)] = fwd_bwd(layer, batch, hidden, dev)
            chosen[(label, path)] = layer.chosen_path()
    for run in runs.values():
        run()  # warm-up
    times = interleaved_times(runs, rounds, time.perf_counter if clock == "wall" else time.process_time)
    base = times[("torch.nn.LSTM", "baseline")]
    rows = []
    for key, ts in times.items():
        ratios = [t / b for t, b in zip(ts, base)]
        lo, hi = _quartiles(ratios)
        rows.append(dict(scheme=key[0], path=key[1], chosen=chosen[key], hidden=hidden,
                         batch=batch, ms=1e3 * statistics.median(ts),
                         ratio=statistics.median(ratios), ratio_q1=lo, ratio_q3=hi))
    return rows


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _markdown(rows: list[dict]) -> str:
    lines = ["| H | scheme | path (chosen) | fwd+bwd ms (median) | ratio vs nn.LSTM | ratio IQR |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['hidden']} | {r['scheme']} | {r['path']} ({r['chosen']}) | "
                     f"{r['ms']:.1f} | {r['ratio']:.2f} | {r['ratio_q1']:.2f}-{r['ratio_q3']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 650])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--paths", nargs="+", default=["auto", "reference"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="cpu",
                    help="wall-clock time, or process CPU time (steadier on a shared machine)")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.threads < 1:
        ap.error("--rounds and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    rows = []
    for h in args.hidden:
        rows += measure(h, args.batch, args.rounds, tuple(args.paths), args.clock)
    header = (f"CPU: {_cpu_model()}, torch {torch.__version__}, {torch.get_num_threads()} "
              f"threads, {args.clock} clock, fp32, B={args.batch}, T={T}, "
              f"{args.rounds} interleaved rounds")
    print(header)
    print(_markdown(rows))
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"header": header, "rows": rows}, f, indent=1)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
