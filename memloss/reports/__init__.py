"""memloss reports: run directories -> tables and seaborn figures -> one self-contained HTML
file and a PDF (``memloss report RUN_DIR... --out OUT``). See docs/reports.md.

Describing (what the report says: :mod:`memloss.reports.describe`, :mod:`memloss.reports.document`,
:mod:`memloss.reports.plots`) is separate from drawing (:mod:`memloss.reports.html`, :mod:`memloss.reports.pdf`).
"""
from .build import output_paths, report_from_records, report_from_runs, write_report
from .document import Attachment, Code, Figure, Flag, Headline, Report, Section, Table, Text
from .html import render_html
from .pdf import render_pdf
from .plots import BarPlot, LinePlot
from .runs import RunRecord, label_runs, read_run, read_runs

__all__ = ["report_from_runs", "report_from_records", "write_report", "output_paths", "Report", "Section", "Text",
           "Table", "Figure", "Code", "Attachment", "Flag", "Headline", "LinePlot", "BarPlot", "render_html", "render_pdf",
           "RunRecord", "read_run", "read_runs", "label_runs"]
