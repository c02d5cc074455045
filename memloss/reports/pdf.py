"""Render a :class:`~memloss.reports.document.Report` as a PDF (matplotlib ``PdfPages``).

Text, tables and configs flow onto A4 pages (a table longer than a page continues on the
next, its title repeated with "(continued)"); every figure gets a page of its own with
its section and title at the top. No creation date is written, so the same inputs give
the same bytes.
"""
from __future__ import annotations

import contextlib
import io
import logging
import textwrap
from typing import Iterator

import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages

from .document import Code, Figure, Report, Section, Table, Text
from .render import draw, formatted_rows
from .style import PDF_METADATA, report_style

__all__ = ["render_pdf"]

_PAGE = (8.27, 11.69)  # A4 portrait, inches
_MARGIN = 0.6
_ROW_H = 0.19
_MAX_CELL = 42
_WRAP = 105
_CHAR_EM = 0.68


class _Flow:
    """Places text and tables top to bottom on A4 pages, starting a new page when full."""

    def __init__(self, pdf: PdfPages) -> None:
        self.pdf = pdf
        self.fig: "plt.Figure | None" = None
        self.y = 0.0  # inches from the top

    def _new_page(self) -> None:
        self.flush()
        self.fig = plt.figure(figsize=_PAGE)
        self.y = _MARGIN

    def flush(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            plt.close(self.fig)
            self.fig = None

    def _room(self, height: float) -> None:
        if self.fig is None or self.y + height > _PAGE[1] - _MARGIN:
            self._new_page()

    def text(self, line: str, size: float = 9.0, weight: str = "normal",
             family: str = "sans-serif", gap: float = 0.0) -> None:
        height = size / 72 * 1.45 + gap
        self._room(height)
        assert self.fig is not None
        self.fig.text(_MARGIN / _PAGE[0], 1 - (self.y + size / 72) / _PAGE[1], line,
                      fontsize=size, weight=weight, family=family, va="baseline")
        self.y += height

    def space(self, inches: float) -> None:
        self.y += inches

    def table(self, title: str, header: list[str], rows: list[list[str]]) -> None:
        clip = [[c if len(c) <= _MAX_CELL else c[:_MAX_CELL - 1] + "\u2026" for c in r] for r in rows]
        head = [h if len(h) <= _MAX_CELL else h[:_MAX_CELL - 1] + "\u2026" for h in header]
        widths = [max([len(head[j])] + [len(r[j]) for r in clip]) + 2 for j in range(len(head))]
        total = sum(widths)
        avail_w = _PAGE[0] - 2 * _MARGIN
        # DejaVu Sans glyphs are about 0.68 em wide on average (bold headers included)
        size = max(4.0, min(7.0, avail_w / (total * _CHAR_EM / 72)))
        start, first = 0, True
        while start < len(clip) or first:
            self.text(title if first else f"{title} (continued)", size=10, weight="bold", gap=0.04)
            avail = _PAGE[1] - _MARGIN - self.y
            n = max(1, min(len(clip) - start, int(avail / _ROW_H) - 1))
            if int(avail / _ROW_H) - 1 < 1 and clip:
                self._new_page()
                continue
            chunk = clip[start:start + n]
            height = _ROW_H * (len(chunk) + 1)
            assert self.fig is not None
            W = min(avail_w, total * size / 72 * _CHAR_EM + 0.2)
            ax = self.fig.add_axes([_MARGIN / _PAGE[0], 1 - (self.y + height) / _PAGE[1],
                                    W / _PAGE[0], height / _PAGE[1]])
            ax.axis("off")
            tab = ax.table(cellText=chunk or [[""] * len(head)], colLabels=head,
                           colWidths=[w / total for w in widths], loc="upper center",
                           cellLoc="center", bbox=[0, 0, 1, 1])
            tab.auto_set_font_size(False)
            tab.set_fontsize(size)
            for (r, _), cell in tab.get_celld().items():
                cell.set_linewidth(0.4)
                if r == 0:
                    cell.set_facecolor("#eeeeee")
                    cell.set_text_props(weight="bold")
            self.y += height + 0.15
            start += n
            first = False
            if start < len(clip):
                self._new_page()


def _section(flow: _Flow, pdf: PdfPages, section: Section) -> None:
    heading = True  # the section title goes above its first text block; figures carry it
    blocks = list(section.blocks)
    intro = ""  # a text right before a figure is printed on the figure's page
    for i, block in enumerate(blocks):
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        if isinstance(block, Text) and isinstance(nxt, Figure):
            intro = block.text
            continue
        if heading and not isinstance(block, Figure):
            for line in textwrap.wrap(section.title, _fit_chars(14)):
                flow.text(line, size=14, weight="bold", gap=0.08)
            heading = False
        if isinstance(block, Text):
            for para in [p for p in block.text.split("\n\n") if p.strip()]:
                for line in textwrap.wrap(" ".join(para.split()), _WRAP):
                    flow.text(line)
                flow.space(0.08)
        elif isinstance(block, Table):
            header, rows = formatted_rows(block.frame)
            flow.table(block.title, header, rows)
            if block.caption:
                for line in textwrap.wrap(block.caption, _WRAP):
                    flow.text(line, size=8)
                flow.space(0.1)
        elif isinstance(block, Code):
            flow.text(block.title, size=10, weight="bold", gap=0.04)
            for raw in block.text.splitlines():
                for line in textwrap.wrap(raw, _WRAP, subsequent_indent="    ",
                                          drop_whitespace=False) or [""]:
                    flow.text(line, size=6.5, family="monospace")
            flow.space(0.1)
        elif isinstance(block, Figure):
            flow.flush()
            fig = draw(block)
            width = max(40, int(fig.get_figwidth() * 14))
            lines = [ln for p in intro.split("\n\n") if p.strip()
                     for ln in textwrap.wrap(" ".join(p.split()), width)]
            intro = ""
            head = 0.45 + 0.16 * len(lines)
            fig.text(0.01, 1 + (head - 0.1) / fig.get_figheight(),
                     f"{section.title} \u2014 {block.title}", fontsize=11, weight="bold",
                     va="top", ha="left")
            if lines:
                fig.text(0.01, 1 + (head - 0.4) / fig.get_figheight(), "\n".join(lines),
                         fontsize=8, va="top", ha="left", linespacing=1.4)
            if block.caption:
                fig.text(0.01, -0.01, "\n".join(textwrap.wrap(block.caption, width)),
                         fontsize=8, va="top", ha="left")
            pdf.savefig(fig, bbox_inches="tight", pad_inches=0.25)
            plt.close(fig)
        else:
            raise ValueError(f"cannot render a {type(block).__name__} block; use Text, Table, "
                             "Figure or Code")
    flow.space(0.2)


def _fit_chars(size: float) -> int:
    """How many characters of a ``size``-point bold line fit between the margins."""
    return max(10, int((_PAGE[0] - 2 * _MARGIN) * 72 / (size * _CHAR_EM)))


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence a chatty library logger (fontTools logs every font subset at INFO)."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(old)


def render_pdf(report: Report) -> bytes:
    """The report as PDF bytes: a title page with contents, then the sections."""
    buf = io.BytesIO()
    with _quiet("fontTools"), report_style(), PdfPages(buf, metadata={**PDF_METADATA, "Title": report.title}) as pdf:
        flow = _Flow(pdf)
        for line in textwrap.wrap(report.title, _fit_chars(18)):
            flow.text(line, size=18, weight="bold", gap=0.1)
        if report.subtitle:
            for line in textwrap.wrap(report.subtitle, 90):
                flow.text(line, size=10)
        flow.space(0.2)
        flow.text("Contents", size=12, weight="bold", gap=0.05)
        for i, s in enumerate(report.sections, 1):
            flow.text(f"{i}. {s.title}", size=10)
        flow.flush()
        for s in report.sections:
            _section(flow, pdf, s)
        flow.flush()
    return buf.getvalue()
