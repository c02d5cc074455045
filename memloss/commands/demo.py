"""``memloss demo [--quick] --out DIR``: the main job on generated data (no downloads)."""
from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from memloss.demo import SIZES, run_demo, table1

    size = "quick" if args.quick else args.size
    cfg = SIZES[size]
    if args.seed is not None:
        cfg = replace(cfg, seed=args.seed)
    result = run_demo(cfg, args.out)
    print(table1(result["results"]).to_string(index=False))
    print(f"demo ({size}) took {result['seconds']:.0f} s")
    for path in (f"{args.out}/results.csv", *result["report"]):
        print(f"wrote {path}")
    return 0


#: demo sizes (memloss.demo.SIZES; listed here so building the CLI stays light)
SIZE_NAMES = ("full", "quick", "tiny")


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("demo", help="train the temporal-order task under every scheme, probe, "
                       "and report (Semeniuta Table 1)",
                       description="Train LSTMs on the temporal order task (lengths 15 and 30) "
                       "under none, zaremba, gal, moon and semeniuta (per step and per "
                       "sequence) and zoneout; run the probes; write DIR/results.csv, "
                       "DIR/report.html, DIR/report.pdf and DIR/report-data/. Needs no "
                       "downloads. Runs on one thread: the full demo measured 617 s of CPU "
                       "time (about 10 minutes on an idle core), --quick 199 s. New runs "
                       "replace DIR/runs/ only once all are written.")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--quick", action="store_true",
                   help="smaller nets and data (measured 199 s of CPU time)")
    p.add_argument("--size", choices=SIZE_NAMES, default="full",
                   help="demo size (default: full; --quick is --size quick)")
    p.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    p.set_defaults(func=_run)
