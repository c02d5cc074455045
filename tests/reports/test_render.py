"""The document model, plot descriptions and the two renderers, on hand-made content."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from memloss.reports import BarPlot, Code, Figure, Flag, Headline, LinePlot, Report, Section, \
    Table, Text, render_html, render_pdf, write_report
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
                                                    col="quantity", ylabel="norm (L2)"),
                                  "bands over seeds"),
                           Figure("bars", BarPlot(frame[frame.t == 2], x="label", hue="mode",
                                                  ylabel="norm (L2)")))),
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
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["out-data", "out.html",
                                                                     "out.pdf"]


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
        LinePlot(frame, x="label", ylabel="norm")
    with pytest.raises(ValueError, match="empty"):
        LinePlot(frame.iloc[:0], x="t", ylabel="norm")
    with pytest.raises(ValueError, match="DataFrame"):
        Table("t", [[1, 2]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="give ylabel"):
        LinePlot(frame, x="t", hue="label")  # the generic 'value' column needs words
    with pytest.raises(ValueError, match="outside the table"):
        Table("t", pd.DataFrame({"a": [1]}), flags=(Flag(3, "a", "x"),))


def test_duplicate_section_titles_are_rejected():
    with pytest.raises(ValueError, match="same title"):
        Report("r", (Section("A b"), Section("a-b")))


def test_lineplot_draws_one_panel_per_facet_with_bands():
    fig = LinePlot(_frame(), x="t", hue="label", style="mode", col="quantity",
                   panel_ylabels={"c_norm": "cell norm (L2)", "h_norm": "hidden norm (L2)"})()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["c_norm", "h_norm"]
    assert [ax.get_ylabel() for ax in axes] == ["cell norm (L2)", "hidden norm (L2)"]
    # two seeds per point: each line has a confidence band (a PolyCollection)
    assert all(len(ax.collections) >= 4 for ax in axes)
    assert fig.legends, "one legend for the whole figure"


def test_flags_and_highlights_are_marked_in_both_formats():
    frame = pd.DataFrame({"scheme": ["moon", "semeniuta"], "test": [0.065, 1.0]})
    table = Table("Beside the paper", frame, flags=(Flag(0, "test", "below chance (0.25)"),),
                  highlight=(0,))
    report = Report("Flags", (Section("Results", (table,)),),
                    headline=Headline("moon fails at test", None, table))
    html = render_html(report)
    assert html.count('class="flag"') == 2 and "<sup>1</sup>" in html
    assert '<tr class="hl">' in html and "below chance (0.25)" in html
    assert html.index('id="finding"') < html.index('id="results"')
    from pypdf import PdfReader
    import io

    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(render_pdf(report))).pages)
    assert "0.065 [1]" in text and "[1] below chance (0.25)" in text


def test_barplot_marks_chance_and_the_papers_numbers():
    frame = pd.DataFrame({"scheme": ["moon", "moon", "gal", "gal"], "split": ["train", "test"] * 2,
                          "acc": [1.0, 0.07, 1.0, 1.0], "paper": [1.0, 0.25, 1.0, float("nan")],
                          "bound": ["", "<", "", ""]})
    fig = BarPlot(frame, x="scheme", y="acc", hue="split", ylabel="accuracy (fraction)",
                  chance=0.25, paper="paper", paper_bound="bound")()
    ax = fig.axes[0]
    chance = [ln for ln in ax.get_lines() if ln.get_label().startswith("chance")]
    assert len(chance) == 1 and list(chance[0].get_ydata()) == [0.25, 0.25]
    marks = [ln for ln in ax.get_lines() if ln.get_marker() in ("_", "v")]
    assert sorted(float(ln.get_ydata()[0]) for ln in marks) == [0.25, 1.0, 1.0]
    assert [ln.get_marker() for ln in marks if ln.get_ydata()[0] == 0.25] == ["v"]
    assert ax.get_ylabel() == "accuracy (fraction)"


def test_dollar_signs_never_reach_the_tex_parser(tmp_path: Path):
    """A $ in a title, label, table cell, panel or axis label is shown as typed: unescaped,
    r"$\\frac{$" makes matplotlib's mathtext parser raise."""
    bad = r"cost $\frac{$ run"
    frame = pd.DataFrame({"label": [bad, "b"] * 3, "t": [0, 0, 1, 1, 2, 2],
                          "q": [bad] * 6, "value": [1.0, 2, 3, 4, 5, 6]})
    table = pd.DataFrame({bad: [bad], "x": [1.0]})
    report = Report(bad, (Section(bad, (Text(bad), Table(bad, table),
                                        Figure(bad, LinePlot(frame, x="t", hue="label", col="q",
                                                             ylabel=bad, xlabel=bad), bad),
                                        Code(bad, bad))),), subtitle=bad,
                    headline=Headline(bad, Figure(bad, BarPlot(frame, x="label", ylabel=bad)),
                                      Table(bad, table)))
    html, pdf = write_report(report, tmp_path / "r")
    assert "cost $\\frac{$ run" in html.read_text()
    from pypdf import PdfReader

    text = "".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert "cost $\\frac{$ run" in text


def test_a_failed_write_leaves_the_previous_report_whole(tmp_path: Path, monkeypatch):
    """Both files are rendered first; if renaming the PDF fails, the new HTML is taken back
    and the previous HTML, PDF and data folder stay as they were."""
    import memloss.reports.build as build

    old = tmp_path / "r"
    write_report(_report(), old)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("r.*")}
    real = os.replace
    calls = []

    def flaky(src, dst):  # the rename of the new PDF into place fails, once
        calls.append(Path(dst).name)
        if Path(dst).name == "r.pdf" and Path(src).name == "pdf":
            raise OSError("disk full")
        return real(src, dst)
    monkeypatch.setattr(build.os, "replace", flaky)
    changed = Report("Another title", _report().sections)
    with pytest.raises(OSError, match="disk full"):
        write_report(changed, old)
    monkeypatch.setattr(build.os, "replace", real)
    assert "r.html" in calls  # the HTML had been replaced before the PDF failed
    assert {p.name: p.read_bytes() for p in tmp_path.glob("r.*")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-data", "r.html", "r.pdf"]
