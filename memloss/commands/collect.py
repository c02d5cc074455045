"""``memloss collect DIR... --out FILE.parquet|FILE.csv``: one row per run, every grid's
summary across seeds (per setting: mean and 95% interval; settings paired by seed), and a
summary per paper table row (seeds, mean, sd, 95% interval, the paper's number) with the rank
agreement.

A run that cannot be read is left out, one line on stderr with its reason, and the rest are
collected; the exit status is then 3 (0 when every run was collected)."""
from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    import sys

    import pandas as pd

    from memloss.collect import LEFT_OUT_EXIT, collect

    result = collect(args.dirs, args.out)
    for path in result.paths:
        print(f"wrote {path}")
    print(f"{len(result.runs)} runs" + (f", {len(result.left_out)} left out" if result.left_out
                                        else ""))
    for path, reason in result.left_out:
        print(f"memloss collect: left out {path}: {reason}", file=sys.stderr)
    code = LEFT_OUT_EXIT if result.left_out else 0
    grid = result.grid
    with pd.option_context("display.width", 200, "display.max_columns", None,
                           "display.max_colwidth", 60, "display.float_format", "{:.4g}".format):
        if not grid.summary.empty:
            varied = ", ".join(k.removeprefix("train.") for k in grid.keys) or "nothing"
            print(f"\nacross seeds (the runs vary {varied}; mean and 95% interval):")
            print(grid.summary[["setting", "metric", "seeds", "mean", "ci_low", "ci_high"]]
                  .to_string(index=False))
        if not grid.paired.empty:
            print("\npaired by seed (a - b, 95% interval, paired t-test):")
            print(grid.paired[["metric", "a", "b", "pairs", "mean_diff", "ci_low", "ci_high",
                               "p_value"]].to_string(index=False))
    if result.summary.empty:
        print("no run reproduces a paper row (none records info.preset): no paper summary")
        return code
    cols = ["table", "row", "split", "seeds", "mean", "sd", "ci_low", "ci_high", "reported", "bound",
            "inside"]
    with pd.option_context("display.width", 200, "display.max_columns", None,
                           "display.max_colwidth", 60, "display.float_format", "{:.4g}".format):
        print()
        print(result.summary[cols].to_string(index=False))
        print()
        print(result.agreement.to_string(index=False))
    return code


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("collect", help="collect run directories into Parquet/CSV with a "
                                       "summary beside the papers",
                       description=__doc__.splitlines()[0])
    p.add_argument("dirs", nargs="+", metavar="DIR",
                   help="run directories or sweep directories (searched for runs)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="FILE.parquet or FILE.csv; the paper summary, the rank agreement, "
                        "the grid's summary across seeds and its paired comparisons go to "
                        "FILE.summary.*, FILE.agreement.*, FILE.grid.* and FILE.paired.*")
    p.set_defaults(func=_run)
