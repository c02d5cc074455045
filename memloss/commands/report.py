"""``memloss report RUN_DIR... --out OUT``: write OUT.html and OUT.pdf for some runs."""
from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from memloss.reports import report_from_runs, write_report

    report = report_from_runs(args.runs, title=args.title)
    html, pdf = write_report(report, args.out)
    print(f"wrote {html}")
    print(f"wrote {pdf}")
    return 0


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("report", help="write an HTML and a PDF report of run directories",
                       description="Write OUT.html (one self-contained file) and OUT.pdf: "
                       "results beside the papers' numbers, training curves, one figure per "
                       "probe comparing the schemes, and the runs' configs.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (memloss train --out)")
    p.add_argument("--out", required=True, metavar="OUT",
                   help="output stem: writes OUT.html and OUT.pdf")
    p.add_argument("--title", default="memloss report", help="report title")
    p.set_defaults(func=_run)
