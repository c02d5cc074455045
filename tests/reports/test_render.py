"""The document model, plot descriptions and the two renderers, on hand-made content."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from memloss.reports import BarPlot, Code, Figure, LinePlot, Report, Section, Table, Text, render_html, \
    render_pdf, write_report
from memloss.core.atomic import atomic_write_bytes
from memloss.reports.build import output_paths


def _frame() -> pd.DataFrame:
    rows = [{"label": lab, "mode": mode, "t": t, "quantity": q, "seed": s,
             "value": (0.5 if lab == "moon" else 0.95) ** t + 0.01 * s}
            for lab in ("moon", "semeniuta") for mode in ("deterministic", "mc")
            for q in ("c_norm", "h_norm") for s in (0, 1) for t in range(5)]
    frame = pd.DataFrame(rows)
    frame["label"] = frame["label"].astype("string")  # pandas string dtype, as read from CSV
    return frame


def _report() -> Report:
    frame = _frame()
    table = pd.DataFrame({"scheme": ["moon", "semeniuta"], "accuracy": [0.25, 1.0],
                          "paper": ["<0.25", "1"]})
    return Report("A report", (
        Section("Summary", (Text("First paragraph.\n\nSecond <b>paragraph</b>."),
                            Table("Results", table, "a caption"))),
        Section("Curves", (Figure("decay", LinePlot(frame, x="t", hue="label", style="mode",
                                                    col="quantity"), "bands over seeds"),
                           Figure("bars", BarPlot(frame[frame.t == 2], x="label", hue="mode")))),
        Section("Configs", (Code("run-0", '{\n  "scheme": "moon"\n}'),)),
    ), subtitle="subtitle")


def test_html_is_self_contained_escaped_and_deterministic():
    report = _report()
    html = render_html(report)
    assert html == render_html(report)
    assert html.startswith("<!DOCTYPE html>")
    for anchor in ("summary", "curves", "configs"):
        assert f'<section id="{anchor}">' in html
    assert html.count("<svg") == 2
    assert "<script" not in html and "<metadata" not in html
    assert not re.search(r'(src|href)="(https?:|//|file:)', html), "no external resources"
    assert "Second &lt;b&gt;paragraph&lt;/b&gt;." in html
    assert "&lt;0.25" in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "element ids must be unique across inline figures"


def test_pdf_is_deterministic_and_has_no_dates():
    report = _report()
    pdf = render_pdf(report)
    assert pdf.startswith(b"%PDF")
    assert pdf == render_pdf(report)
    assert b"CreationDate" not in pdf and b"ModDate" not in pdf


def test_write_report_writes_both_files_atomically(tmp_path: Path):
    html, pdf = write_report(_report(), tmp_path / "sub" / "out.html")
    assert html == tmp_path / "sub" / "out.html" and pdf == tmp_path / "sub" / "out.pdf"
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert pdf.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["out.html", "out.pdf"]


def test_output_paths():
    assert output_paths("a/b") == (Path("a/b.html"), Path("a/b.pdf"))
    assert output_paths("a/b.pdf") == (Path("a/b.html"), Path("a/b.pdf"))
    with pytest.raises(ValueError, match="directory"):
        output_paths(os.getcwd())


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path, monkeypatch):
    target = tmp_path / "x.html"
    target.write_text("old")

    def boom(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.html"]


def test_bad_plot_descriptions_fail_clearly():
    frame = _frame()
    with pytest.raises(ValueError, match="hue column 'scheme'"):
        LinePlot(frame, x="t", hue="scheme")
    with pytest.raises(ValueError, match="numeric"):
        LinePlot(frame, x="label")
    with pytest.raises(ValueError, match="empty"):
        LinePlot(frame.iloc[:0], x="t")
    with pytest.raises(ValueError, match="DataFrame"):
        Table("t", [[1, 2]])  # type: ignore[arg-type]


def test_duplicate_section_titles_are_rejected():
    with pytest.raises(ValueError, match="same title"):
        Report("r", (Section("A b"), Section("a-b")))


def test_lineplot_draws_one_panel_per_facet_with_bands():
    fig = LinePlot(_frame(), x="t", hue="label", style="mode", col="quantity")()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["c_norm", "h_norm"]
    # two seeds per point: each line has a confidence band (a PolyCollection)
    assert all(len(ax.collections) >= 4 for ax in axes)
    assert fig.legends, "one legend for the whole figure"
