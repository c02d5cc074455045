"""Cold start of ``memloss train`` on the fused path: seconds from the interpreter's start to
the end of the first training step (its backward), with an empty kernel cache and with a
warm one, in fresh processes.

    .venv/bin/python -m benchmarks.cold_start                     # adding task, semeniuta
    .venv/bin/python -m benchmarks.cold_start --scheme zoneout --set net.hidden_size=64

Three runs, each a new process with its own ``MEMLOSS_KERNEL_CACHE``: ``auto`` on an empty
cache (kernels compile in the background while the first steps run uncompiled), ``always``
on an empty cache (the first step waits for the compiler: the behaviour before background
compiles; it fills the cache), then ``auto`` on that filled cache. Each child stops right
after its first step. Wall time and CPU time (this process and its compiler subprocesses)
are reported; on a shared machine compare CPU times. Not an asv benchmark.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
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
        print(json.dumps({"wall": time.perf_counter() - _T0, "cpu": _cpu(),
                          "compiled_kernels": kernels.compiled_kernels(),
                          "mode": kernels.COMPILE}), flush=True)
        os._exit(0)

    torch.Tensor.backward = first_backward  # type: ignore[method-assign]
    return cli_main(["train", *argv])


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
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        return _child(args[2:] if args[1:2] == ["--"] else args[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="adding")
    ap.add_argument("--scheme", default="semeniuta:p=0.25")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="passed to memloss train")
    a = ap.parse_args(args)
    train = [a.task, "--scheme", a.scheme] + [x for kv in a.set for x in ("--set", kv)]
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as filled:
        rows = [("empty cache, auto (background compile)", _run(train, empty, "auto")),
                ("empty cache, always (first step waits)", _run(train, filled, "always")),
                ("warm cache, auto", _run(train, filled, "auto"))]
    warm = rows[2][1]
    print(f"memloss train {' '.join(train)}; load average {os.getloadavg()[0]:.1f}")
    print("| run | first step done: wall s | CPU s | vs warm cache: wall s | CPU s | kernels "
          "compiled by then |")
    print("|---|---|---|---|---|---|")
    for label, r in rows:
        print(f"| {label} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['wall'] - warm['wall']:+.1f} | "
              f"{r['cpu'] - warm['cpu']:+.1f} | {r['compiled_kernels']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
