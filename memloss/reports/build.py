"""Build a report from run directories and write OUT.html and OUT.pdf (atomically)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from memloss.core.atomic import atomic_write_bytes, atomic_write_text
from .describe import describe_runs
from .document import Report, Section
from .paper_tables import paper_table_sections
from .html import render_html
from .pdf import render_pdf
from .runs import RunRecord, read_runs

__all__ = ["report_from_runs", "report_from_records", "write_report", "output_paths"]

log = logging.getLogger(__name__)


def report_from_runs(paths: Sequence["str | os.PathLike[str]"], *, title: str = "memloss report",
                     subtitle: str = "", lead: Sequence[Section] = ()) -> Report:
    """Read, label and describe the runs; ``lead`` sections come first (e.g. the demo's
    Table 1 comparison)."""
    return report_from_records(read_runs(paths), title=title, subtitle=subtitle, lead=lead)


def report_from_records(runs: Sequence[RunRecord], *, title: str = "memloss report",
                        subtitle: str = "", lead: Sequence[Section] = ()) -> Report:
    """The same from run directories already read (:func:`~memloss.reports.read_runs`)."""
    return Report(title, tuple(lead) + tuple(paper_table_sections(runs)) + tuple(describe_runs(runs)),
                  subtitle)


def output_paths(out: "str | os.PathLike[str]") -> tuple[Path, Path]:
    """``OUT`` -> ``(OUT.html, OUT.pdf)``; a trailing ``.html`` or ``.pdf`` is dropped."""
    out = Path(out)
    if out.suffix.lower() in (".html", ".pdf"):
        out = out.with_suffix("")
    if not out.name or out.is_dir():
        raise ValueError(f"--out {out} is a directory; give a file stem such as {out / 'report'}")
    return out.with_name(out.name + ".html"), out.with_name(out.name + ".pdf")


def write_report(report: Report, out: "str | os.PathLike[str]") -> tuple[Path, Path]:
    """Render the report and write OUT.html and OUT.pdf; both are rendered before either is
    written, and each is written atomically."""
    html_path, pdf_path = output_paths(out)
    html = render_html(report)
    pdf = render_pdf(report)
    atomic_write_text(html_path, html)
    atomic_write_bytes(pdf_path, pdf)
    log.info("wrote %s and %s", html_path, pdf_path)
    return html_path, pdf_path
