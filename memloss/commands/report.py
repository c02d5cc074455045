"""``memloss report RUN_DIR... [--out OUT]``: write OUT.html, OUT.pdf and OUT-data/ for some runs."""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "DEFAULT_OUT"]

#: where ``memloss report`` writes when no --out is given (git-ignored)
DEFAULT_OUT = Path("reports-out") / "report"


def _run(args: argparse.Namespace) -> int:
    from memloss.reports import report_from_runs, write_report

    report = report_from_runs(args.runs, title=args.title)
    html, pdf = write_report(report, args.out, sources=[_source(r) for r in args.runs])
    print(f"wrote {html}")
    print(f"wrote {pdf}")
    print(f"wrote {html.with_name(html.stem + '-data')}/ (the raw tables as CSV files)")
    return 0


def _source(run: str) -> dict:
    """A run and the checkpoint the report read it at: the weights its final.json was scored
    with (step and digest)."""
    from pathlib import Path

    from memloss.core import runfiles as rf

    try:
        ckpt = rf.read_checkpoint(run)
        final = rf.read_json(Path(run) / rf.FINAL) if (Path(run) / rf.FINAL).is_file() else {}
        best = isinstance(final, dict) and final.get("weights") == "best"
        name = rf.BEST if best and ckpt is not None and ckpt.has(rf.BEST) else rf.MODEL
        ref = None if ckpt is None else rf.checkpoint_ref(ckpt, name)
    except (OSError, ValueError):
        ref = None
    return {"run": str(Path(run).resolve()), "checkpoint": ref}


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("report", help="write an HTML and a PDF report of run directories",
                       description="Write OUT.html (one self-contained file), OUT.pdf (A4, "
                       "with bookmarks and a linked contents page) and OUT-data/ (the raw "
                       "tables as CSV files; its .memloss-report.json lists what memloss wrote and "
                       "each run's checkpoint, and only those files are ever replaced). The "
                       "report opens with the finding: the measured "
                       "result in a sentence, the decisive chart and the numbers beside the "
                       "papers' (deviations flagged); then training curves, one section per "
                       "probe, and an appendix with the data files and the runs' settings. "
                       "Drawing takes a few seconds per figure.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (memloss train --out)")
    p.add_argument("--out", default=str(DEFAULT_OUT), metavar="OUT",
                   help=f"output stem: writes OUT.html, OUT.pdf and OUT-data/ (default {DEFAULT_OUT}, "
                        "a folder git ignores)")
    p.add_argument("--title", default="memloss report", help="report title")
    p.set_defaults(func=_run)
