"""The CPU table of docs/performance.md: forward+backward time of every scheme against
``torch.nn.LSTM`` without dropout, at several sizes and thread counts, in one run.

    .venv/bin/python -m benchmarks.cpu_table                       # H 128 256 650, 1 and 2 threads
    .venv/bin/python -m benchmarks.cpu_table --hidden 128 --threads 1 --rounds 5 --json out.json
    .venv/bin/python -m benchmarks.cpu_table --hidden 128 --threads 1 --profile zoneout

For each thread count the process is pinned to that many CPUs and torch uses that many
threads. Configurations are interleaved round by round (baseline, scheme 1, scheme 2, ...,
the order reversed every other round) so a load change on a shared machine hits all of
them; each call is timed in process CPU time (``--clock cpu``, the default: time other
processes take is not counted) or wall time. The ratio is the median time of a
configuration over the median time of ``nn.LSTM`` (ratio of medians); the spread is the
interquartile range of the per-round ratios. Compilation (the fused path's step kernels, on
first use of a layout) happens in a warm-up call before the rounds and is reported
separately; Inductor keeps compiled kernels in its disk cache (``TORCHINDUCTOR_CACHE_DIR``),
so a second run reuses them. Not an asv benchmark.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Callable

import torch

from memloss.models import PATHS, Recurrent
from memloss.models.paths import kernels, products

from .common import T, fwd_bwd, interleaved_times
from .peak import peak_bytes

__all__ = ["TABLE_SCHEMES", "measure", "profile", "main"]

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
BASELINE = ("torch.nn.LSTM", "baseline")


def _quartiles(xs: list[float]) -> tuple[float, float]:
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def _layer(spec: str, path: str, hidden: int) -> Recurrent:
    layer = Recurrent("lstm", hidden, hidden, scheme=spec, path=path)
    return layer.train()


def measure(hidden: int, batch: int, rounds: int, paths: tuple[str, ...], threads: int,
            clock: str = "cpu", schemes: dict[str, str] | None = None,
            device: str = "cpu") -> tuple[list[dict], dict]:
    """Rows (threads, H, scheme, path, chosen path, median ms, ratio of medians, IQR of the
    per-round ratios) and the warm-up record (seconds, of which compiling)."""
    dev = torch.device(device)
    torch.manual_seed(0)
    runs: dict[tuple[str, str], Callable[[], None]] = {
        BASELINE: fwd_bwd(torch.nn.LSTM(hidden, hidden).to(dev).train(), batch, hidden, dev)}
    chosen = {BASELINE: "torch.nn"}
    for label, spec in (schemes or TABLE_SCHEMES).items():
        for path in paths:
            layer = _layer(spec, path, hidden)
            runs[(label, path)] = fwd_bwd(layer.to(dev), batch, hidden, dev)
            chosen[(label, path)] = layer.chosen_path()
    before = dict(kernels.COMPILE_SECONDS)
    t0 = time.perf_counter()
    for run in runs.values():
        run()  # warm-up: builds and compiles the step kernels of each layout
    kernels.wait_compiled()  # under MEMLOSS_COMPILE=auto they compile in the background
    for run in runs.values():
        run()  # and run from the next call on
    warm = {"seconds": time.perf_counter() - t0,
            "trace_seconds": kernels.COMPILE_SECONDS["trace"] - before["trace"],
            "compile_seconds": kernels.COMPILE_SECONDS["compile"] - before["compile"],
            "compiled_kernels": kernels.compiled_kernels()}
    # on CUDA: wall time around synchronized calls (fwd_bwd synchronizes)
    now = time.perf_counter if clock == "wall" or dev.type == "cuda" else time.process_time
    times = interleaved_times(runs, rounds, now)
    base = times[BASELINE]
    # peak bytes of the tensors one training call allocates (benchmarks.peak), exact
    peaks = {key: peak_bytes(run, dev) for key, run in runs.items()}
    rows = []
    for key, ts in times.items():
        lo, hi = _quartiles([t / b for t, b in zip(ts, base)])
        rows.append(dict(threads=threads, hidden=hidden, batch=batch, scheme=key[0], path=key[1],
                         chosen=chosen[key], ms=1e3 * statistics.median(ts),
                         ratio=statistics.median(ts) / statistics.median(base),
                         ratio_q1=lo, ratio_q3=hi, peak_bytes=peaks[key],
                         peak_ratio=peaks[key] / peaks[BASELINE]))
    return rows, warm


def profile(label: str, hidden: int, batch: int, rounds: int, path: str = "auto",
            top: int = 15) -> str:
    """Where a configuration's time goes: ``torch.profiler`` over ``rounds`` calls of forward
    + backward after a warm-up (kernels compiled), by op, sorted by self CPU time; the
    ``torch.nn.LSTM`` baseline is profiled the same way for comparison."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    dev = torch.device("cpu")
    torch.manual_seed(0)
    runs = {"torch.nn.LSTM": fwd_bwd(torch.nn.LSTM(hidden, hidden).train(), batch, hidden, dev),
            f"{label} [{path}]": fwd_bwd(_layer(TABLE_SCHEMES[label], path, hidden), batch,
                                        hidden, dev)}
    parts = []
    for name, run in runs.items():
        run()  # builds the step kernels of the layout
        kernels.wait_compiled()  # under MEMLOSS_COMPILE=auto they compile in the background:
        run()  # profiled uncompiled otherwise
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(rounds):
                run()
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)
        parts.append(f"{name}, H={hidden}, B={batch}, T={T}, {rounds} calls:\n{table}")
    return "\n".join(parts)


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _pin(threads: int, cpus: list[int]) -> str:
    """Use ``threads`` torch threads, pinned to as many of ``cpus`` (where the OS allows)."""
    torch.set_num_threads(threads)
    try:
        os.sched_setaffinity(0, cpus[:threads])
        return ",".join(map(str, cpus[:threads]))
    except (AttributeError, OSError):
        return "not pinned"


def markdown(rows: list[dict], path: str, field: str = "time") -> str:
    """One table per path: a row per scheme, a column per (H, threads): the time ratio
    (ms; IQR), or with ``field="memory"`` the peak-bytes ratio (MiB)."""
    cols = sorted({(r["hidden"], r["threads"]) for r in rows})
    head = "| scheme | " + " | ".join(f"H={h}, {n} thr." for h, n in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    by = {(r["scheme"], r["path"], r["hidden"], r["threads"]): r for r in rows}
    labels = [BASELINE[0]] + [s for s in dict.fromkeys(r["scheme"] for r in rows)
                              if s != BASELINE[0]]
    for label in labels:
        p = BASELINE[1] if label == BASELINE[0] else path
        cells = []
        for h, n in cols:
            r = by.get((label, p, h, n))
            if r is None:
                cells.append("")
            elif field == "memory":
                cells.append(f"{r['peak_ratio']:.2f} ({r['peak_bytes'] / 2**20:.1f} MiB)")
            else:
                cells.append(f"{r['ratio']:.2f} ({r['ms']:.1f} ms; {r['ratio_q1']:.2f}-"
                             f"{r['ratio_q3']:.2f})")
        chosen = next((r["chosen"] for r in rows if r["scheme"] == label and r["path"] == p), p)
        lines.append(f"| {label} [{chosen}] | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[128, 256, 650])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--paths", nargs="+", default=["auto"], choices=list(PATHS),
                    help="layer paths to time (auto, fused, reference, native)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--clock", choices=("wall", "cpu"), default="cpu",
                    help="process CPU time (default; steadier on a shared machine) or wall time")
    ap.add_argument("--schemes", nargs="+", choices=list(TABLE_SCHEMES),
                    help="a subset of the table's schemes")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    ap.add_argument("--padding", choices=("auto", "never", "always"), default="auto",
                    help="the fused path's padded products (models/paths/products.py): measured "
                         "per shape (auto, the default), or never / always, to compare")
    ap.add_argument("--profile", choices=list(TABLE_SCHEMES), metavar="SCHEME",
                    help="instead of the table: torch.profiler's op table of this scheme and of "
                         "nn.LSTM (first --hidden, first --threads, first --paths, --rounds calls)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: the ratio to cuDNN's nn.LSTM, wall time around synchronized "
                         "calls, TF32 off for both (benchmarks/gpu_check.sh)")
    args = ap.parse_args(argv)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            ap.error("--device cuda: no CUDA device here")
        # the same precision for cuDNN and the fused path's products (DESIGN.md section 4)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if args.rounds < 1 or min(args.threads) < 1 or min(args.hidden) < 1:
        ap.error("--rounds, --threads and --hidden must be >= 1")
    schemes = {k: TABLE_SCHEMES[k] for k in args.schemes} if args.schemes else None
    products.PADDING = args.padding
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:
        allowed = []
    if args.profile:
        cpus = _pin(args.threads[0], allowed)
        print(f"threads={args.threads[0]} (CPUs {cpus}), load average {os.getloadavg()[0]:.1f}")
        print(profile(args.profile, args.hidden[0], args.batch, args.rounds, args.paths[0]))
        return 0
    rows: list[dict] = []
    warmups: list[dict] = []
    load = [os.getloadavg()[0]]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    def header() -> str:
        where = (torch.cuda.get_device_name() + ", wall clock" if args.device == "cuda"
                 else f"CPU: {_cpu_model()}, {args.clock} clock")
        return (f"{where}, torch {torch.__version__}, fp32, "
                f"B={args.batch}, T={T}, {args.rounds} interleaved rounds, padded products "
                f"{args.padding}, started {started}, "
                f"load average {min(load):.1f}-{max(load):.1f}")

    for n in args.threads:
        cpus = _pin(n, allowed)
        for h in args.hidden:
            got, warm = measure(h, args.batch, args.rounds, tuple(args.paths), n, args.clock,
                                schemes, args.device)
            rows += got
            warmups.append(dict(warm, threads=n, hidden=h, cpus=cpus))
            load.append(os.getloadavg()[0])
            print(f"threads={n} (CPUs {cpus}) H={h}: warm-up {warm['seconds']:.1f} s, of which "
                  f"tracing {warm['trace_seconds']:.1f} s and compiling "
                  f"{warm['compile_seconds']:.1f} s; load average {load[-1]:.1f}", flush=True)
            if args.json:  # after every block: a long run that is stopped keeps what it did
                tmp = args.json + ".tmp"
                with open(tmp, "w") as f:
                    json.dump({"header": header(), "rows": rows, "warmups": warmups,
                               "load": load}, f, indent=1)
                os.replace(tmp, args.json)
    print(header())
    for path in args.paths:
        print(f"\npath={path}: ratio of medians vs nn.LSTM (median ms; IQR of per-round ratios)")
        print(markdown(rows, path))
        print(f"\npath={path}: peak bytes of one training call over nn.LSTM's (MiB)")
        print(markdown(rows, path, "memory"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
