"""``memloss probe RUN_DIR [--probe NAME ...]``: run the diagnostics probes on a run
directory and write RUN_DIR/diagnostics/<probe>.csv and <probe>.json."""
from __future__ import annotations

import argparse
import json

__all__ = ["add_parser"]


def _headline(summary: dict) -> str:
    """A short one-line view of a probe summary (first few scalar entries, flattened)."""
    flat: list[str] = []

    def walk(prefix: str, obj: object) -> None:
        if len(flat) >= 4:
            return
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}{k}." if not isinstance(v, (int, float)) else f"{prefix}{k}", v)
        elif isinstance(obj, float):
            flat.append(f"{prefix}={obj:.4g}")
        elif isinstance(obj, int) and not isinstance(obj, bool):
            flat.append(f"{prefix}={obj}")

    walk("", summary)
    return " ".join(flat)


def _run(args: argparse.Namespace) -> int:
    from memloss.runs import probe_run

    params: dict = {}
    for item in args.set or []:
        name, sep, rest = item.partition(":")
        key, eq, raw = rest.partition("=")
        if not sep or not eq:
            raise ValueError(f"--set expects PROBE:KEY=VALUE (JSON value), got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params.setdefault(name, {})[key] = tuple(value) if isinstance(value, list) else value
    results = probe_run(args.run_dir, args.probe, args.out, params=params, seed=args.seed,
                        device=args.device, weights=args.weights)
    out = args.out or f"{args.run_dir}/diagnostics"
    for name, result in results.items():
        print(f"{name}: {len(result.frame)} rows -> {out}/{name}.csv  {_headline(result.summary)}")
    return 0


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("probe", help="run diagnostics probes on a run directory",
                       description=__doc__.splitlines()[0])
    p.add_argument("run_dir", help="a directory written by `memloss train`")
    p.add_argument("--probe", action="append", metavar="NAME",
                   help="probe to run (repeatable; default all, see `memloss ls probes`)")
    p.add_argument("--set", action="append", metavar="PROBE:KEY=VALUE",
                   help="probe parameter, value as JSON, e.g. test-time-scaling:factors=[1,2]")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/diagnostics)")
    p.add_argument("--seed", type=int, default=0, help="seed of the probes' mask generators")
    p.add_argument("--device", default="cpu", help="device to run on (cpu, cuda)")
    p.add_argument("--weights", default="final", choices=("final", "last", "best"),
                   help="which saved weights to probe")
    p.set_defaults(func=_run)
