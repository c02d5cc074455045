"""Cold start of ``memloss train`` on the fused path: seconds from the interpreter's start to
the end of the first training step (its backward), with an empty kernel cache and with a
warm one, in fresh processes.

    .venv/bin/python -m benchmarks.cold_start                     # adding task, semeniuta
    .venv/bin/python -m benchmarks.cold_start --scheme zoneout --set net.hidden_size=64

Three runs, each a new process with its own ``MEMLOSS_KERNEL_CACHE``: ``auto`` on an empty
cache (kernels compile in the background, in memloss's compiler process, while the first
steps run uncompiled), ``always`` on an empty cache (the first step waits for the compiler:
the behaviour before background compiles; it fills the cache), then ``auto`` on that filled
cache; ``--repeat N`` runs the three N times, interleaved, and reports medians. Each child
stops right after its first step. Wall time and CPU time (the training process and the
compiler subprocesses it waited for) are reported, and apart from them the CPU time the
background compiler process had used by then (it runs on, at a lower priority; each run
waits for it to end before the next starts). Not an asv benchmark.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

__all__ = ["main"]

_T0 = time.perf_counter()


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _child(argv: list[str]) -> int:
    """Run ``memloss train argv`` and stop after the first backward, printing one JSON line."""
    import torch

    from memloss.cli import main as cli_main
    from memloss.models.paths import kernels

    orig = torch.Tensor.backward

    def first_backward(self: torch.Tensor, *a: object, **k: object) -> None:
        orig(self, *a, **k)
        wall, cpu = time.perf_counter() - _T0, _cpu()
        pid, compiler_cpu = None, 0.0
        child = getattr(kernels, "_child", None)  # the compiler process, once started
        if child:
            pid = child[0].proc.pid
            compiler_cpu = _proc_cpu(pid)
        print(json.dumps({"wall": wall, "cpu": cpu,
                          "compiled_kernels": kernels.compiled_kernels(),
                          "compiler_pid": pid, "compiler_cpu": compiler_cpu,
                          "mode": kernels.COMPILE}), flush=True)
        os._exit(0)

    torch.Tensor.backward = first_backward  # type: ignore[method-assign]
    return cli_main(["train", *argv])


def _proc_cpu(pid: int) -> float:
    """CPU seconds a running process has used (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _wait_gone(pid: int | None, timeout: float = 600.0) -> None:
    """Wait until a process (the orphaned compiler process of a run) has ended."""
    end = time.monotonic() + timeout
    while pid is not None and time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        time.sleep(0.2)


def _run(argv: list[str], cache: str, mode: str) -> dict:
    env = dict(os.environ, MEMLOSS_KERNEL_CACHE=cache, MEMLOSS_COMPILE=mode)
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.cold_start", "--child", "--",
                               *argv, "--out", os.path.join(out, "run")],
                              env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"cold_start: the training child stopped without a first step "
                         f"(exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    row = json.loads(lines[-1])
    _wait_gone(row.get("compiler_pid"))  # it finishes its kernel in hand, then ends
    return row


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        return _child(args[2:] if args[1:2] == ["--"] else args[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="adding")
    ap.add_argument("--scheme", default="semeniuta:p=0.25")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="passed to memloss train")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each kind (interleaved)")
    a = ap.parse_args(args)
    if a.repeat < 1:
        ap.error(f"--repeat {a.repeat}: give at least 1")
    train = [a.task, "--scheme", a.scheme] + [x for kv in a.set for x in ("--set", kv)]
    labels = ["empty cache, auto (background compile)", "empty cache, always (first step waits)",
              "warm cache, auto"]
    runs: dict[str, list[dict]] = {k: [] for k in labels}
    loads = [os.getloadavg()[0]]
    for _ in range(a.repeat):
        with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as filled:
            runs[labels[0]].append(_run(train, empty, "auto"))
            runs[labels[1]].append(_run(train, filled, "always"))
            runs[labels[2]].append(_run(train, filled, "auto"))
        loads.append(os.getloadavg()[0])

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[label])

    def span(label: str, key: str) -> str:
        v = [r[key] for r in runs[label]]
        return f" ({min(v):.1f}-{max(v):.1f})" if len(v) > 1 else ""

    warm = labels[2]
    print(f"memloss train {' '.join(train)}; {a.repeat} run(s) of each, medians (range); load "
          f"average {min(loads):.1f}-{max(loads):.1f}")
    print("| run | first step done: wall s | CPU s | vs warm cache: wall s | CPU s | kernels "
          "compiled by then | compiler process CPU s by then |")
    print("|---|---|---|---|---|---|---|")
    for label in labels:
        dw = statistics.median(r["wall"] - w["wall"] for r, w in zip(runs[label], runs[warm]))
        dc = statistics.median(r["cpu"] - w["cpu"] for r, w in zip(runs[label], runs[warm]))
        print(f"| {label} | {med(label, 'wall'):.1f}{span(label, 'wall')} | "
              f"{med(label, 'cpu'):.1f}{span(label, 'cpu')} | {dw:+.1f} | {dc:+.1f} | "
              f"{med(label, 'compiled_kernels'):g} | {med(label, 'compiler_cpu'):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
