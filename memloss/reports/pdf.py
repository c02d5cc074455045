"""Render a :class:`~memloss.reports.document.Report` as a navigable PDF.

Every page is A4 portrait. Page i holds the finding (title, headline sentence, decisive
chart, the table beside the paper), page ii a contents page whose entries link to their
sections; the body and then the appendix follow, numbered from 1. Text, tables and
figures flow top to bottom (matplotlib draws the pages; each figure is drawn on its own
and placed, as vectors, into its box on the page with pypdf, scaled down only when wider
than the text). pypdf adds the outline (a bookmark per section, the appendix nested), page
labels matching the printed page numbers (i, ii, then 1, 2, ...), the contents links and
links to the CSV files beside the report. Body text is 9 pt, tables, captions and notes
8 pt. No creation date is written, so the same inputs give the same bytes.
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import textwrap
from dataclasses import dataclass, field
from typing import Callable, Iterator

import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.patches import Rectangle

from .document import Attachment, Code, Figure, Headline, Report, Section, Table, Text
from .render import draw, formatted_rows, is_number, section_title
from .style import PDF_METADATA, plain, report_style

__all__ = ["render_pdf", "PAGE", "TABLE_PT"]

PAGE = (8.27, 11.69)  # A4 portrait, inches
_MARGIN = 0.65
_WIDTH = PAGE[0] - 2 * _MARGIN
_BOTTOM = PAGE[1] - _MARGIN - 0.25  # the footer lives below this
BODY_PT = 9.0
TABLE_PT = 8.0
_EM = {"normal": 0.56, "bold": 0.62, "mono": 0.61, "cell": 0.62, "head": 0.68}
# DejaVu Sans average glyph widths in em (text; table cells with digits; bold headers)
_PAD = 0.05  # cell padding, inches
_CONTENTS_LINES = 40
_FIG_MAX_H = 6.2  # inches a figure may take on a page
_FRONT_FIG_H = 3.0  # inches the decisive chart may take on page i


def _chars(size: float, width: float = _WIDTH, kind: str = "normal") -> int:
    return max(8, int(width * 72 / (size * _EM[kind])))


def _roman(n: int) -> str:
    out = ""
    for value, digits in ((10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        while n >= value:
            out += digits
            n -= value
    return out


@dataclass
class _Placed:
    page: int
    x: float  # inches from the left
    y: float  # inches from the bottom
    scale: float
    pdf: bytes


@dataclass
class _Part:
    """Consecutive pages drawn with matplotlib: what goes on them and where."""

    label: Callable[[int], str]  # page index within the document -> printed page number
    offset: int  # document index of this part's first page
    pdf: PdfPages = field(init=False)
    buf: io.BytesIO = field(default_factory=io.BytesIO)
    fig: "plt.Figure | None" = None
    y: float = 0.0  # inches from the top
    pages: int = 0
    figures: list[_Placed] = field(default_factory=list)
    links: list[tuple[int, tuple[float, float, float, float], object]] = field(default_factory=list)
    marks: list[tuple[str, int, int]] = field(default_factory=list)  # (title, level, page)

    def __post_init__(self) -> None:
        self.pdf = PdfPages(self.buf, metadata=dict(PDF_METADATA))

    # pages ----------------------------------------------------------------------------
    def new_page(self) -> None:
        self.flush()
        self.fig = plt.figure(figsize=PAGE)
        self.pages += 1
        self.y = _MARGIN
        self.fig.text(0.5, 0.35 / PAGE[1], plain(self.label(self.offset + self.pages - 1)),
                      ha="center", va="baseline", fontsize=TABLE_PT, color="0.35")

    def flush(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            plt.close(self.fig)
            self.fig = None

    def close(self) -> bytes:
        self.flush()
        self.pdf.close()
        return self.buf.getvalue()

    @property
    def page(self) -> int:
        """Document index of the current page."""
        return self.offset + self.pages - 1

    def room(self, height: float) -> None:
        if self.fig is None or self.y + height > _BOTTOM:
            self.new_page()

    def mark(self, title: str, level: int) -> None:
        self.room(0.6)
        self.marks.append((title, level, self.page))

    # drawing --------------------------------------------------------------------------
    def _at(self, x: float, y_top: float) -> tuple[float, float]:
        return x / PAGE[0], 1 - y_top / PAGE[1]

    def line(self, text: str, size: float = BODY_PT, weight: str = "normal",
             family: str = "sans-serif", color: str = "black", x: float = _MARGIN) -> None:
        height = size / 72 * 1.4
        self.room(height)
        assert self.fig is not None
        self.fig.text(*self._at(x, self.y + size / 72), plain(text), fontsize=size,
                      weight=weight, family=family, color=color, va="baseline")
        self.y += height

    def paragraph(self, text: str, size: float = BODY_PT, weight: str = "normal",
                  color: str = "black", gap: float = 0.08) -> None:
        for para in [p for p in text.split("\n\n") if p.strip()]:
            for ln in textwrap.wrap(" ".join(para.split()), _chars(size, kind=weight)):
                self.line(ln, size, weight, color=color)
            self.y += gap

    def heading(self, text: str, size: float = 13.0) -> None:
        self.room(size / 72 * 1.5 + 0.9)
        self.y += 0.08
        for ln in textwrap.wrap(text, _chars(size, kind="bold")):
            self.line(ln, size, "bold")
        self.y += 0.04

    def figure(self, block: Figure, title: bool = True, max_height: float = _FIG_MAX_H) -> None:
        fig = draw(block)
        buf = io.BytesIO()
        with report_style():
            fig.savefig(buf, format="pdf", bbox_inches="tight", pad_inches=0.04,
                        metadata=dict(PDF_METADATA))
        plt.close(fig)
        from pypdf import PdfReader

        box = PdfReader(io.BytesIO(buf.getvalue())).pages[0].mediabox
        w, h = float(box.width) / 72, float(box.height) / 72
        scale = min(1.25, _WIDTH / w, max_height / h)
        caption = textwrap.wrap(block.caption, _chars(TABLE_PT)) if block.caption else []
        heading = textwrap.wrap(block.title, _chars(10.0, kind="bold")) if title else []
        need = h * scale + 0.2 * len(heading) + len(caption) * TABLE_PT / 72 * 1.4 + 0.1
        self.room(need)
        for ln in heading:
            self.line(ln, 10.0, "bold")
        assert self.fig is not None
        x = _MARGIN + (_WIDTH - w * scale) / 2
        self.y += h * scale
        self.figures.append(_Placed(self.page, x, PAGE[1] - self.y, scale, buf.getvalue()))
        self.y += 0.06
        for ln in caption:
            self.line(ln, TABLE_PT, color="0.25")
        self.y += 0.12

    def table(self, block: Table) -> None:
        header, rows = formatted_rows(block.frame)
        marks = block.flag_marks()
        rows = [[c + (f" [{marks[(i, h)]}]" if (i, h) in marks else "") for h, c in zip(header, r)]
                for i, r in enumerate(rows)]
        flagged = {(i, j) for i in range(len(rows)) for j, h in enumerate(header)
                   if (i, h) in marks}
        for n, (cols, cont) in enumerate(_column_chunks(header, rows)):
            self._table_chunk(block, header, rows, cols, flagged, cont,
                              block.caption if n == 0 else "")
        for i, f in enumerate(block.flags, 1):
            for k, ln in enumerate(textwrap.wrap(f"[{i}] {f.note}", _chars(TABLE_PT) - 4)):
                self.line(ln, TABLE_PT, color="#7a1500", x=_MARGIN + (0 if k == 0 else 0.2))
        self.y += 0.14

    def _table_chunk(self, block: Table, header: list[str], rows: list[list[str]],
                     cols: list[int], flagged: set, continued: bool, caption: str = "") -> None:
        char = TABLE_PT * _EM["cell"] / 72
        head_ratio = _EM["head"] / _EM["cell"]
        widths = {j: min(_COL_CHARS, max([math.ceil(len(header[j]) * head_ratio)]
                                         + [len(r[j]) for r in rows]))
                  for j in cols}
        while sum(widths[j] * char + 2 * _PAD for j in cols) > _WIDTH:
            widest = max(cols, key=lambda j: widths[j])  # narrow it: its text wraps
            if widths[widest] <= 6:
                break
            widths[widest] -= 1
        total = sum(widths[j] * char + 2 * _PAD for j in cols)
        stretch = _WIDTH / total if total > _WIDTH else 1.0
        xs, x = {}, _MARGIN
        for j in cols:
            xs[j] = x
            x += (widths[j] * char + 2 * _PAD) * stretch
        line_h = TABLE_PT / 72 * 1.3

        def cells(values: list[str], ratio: float = 1.0) -> list[list[str]]:
            return [textwrap.wrap(values[j], max(4, int(widths[j] * stretch / ratio))) or [""]
                    for j in cols]

        title = block.title + (" (continued)" if continued else "")
        head = cells(header, head_ratio)
        head_h = max(len(c) for c in head) * line_h + 2 * _PAD
        self.room(0.3 + head_h + line_h + 2 * _PAD)
        self.line(title, 10.0, "bold")
        if caption:  # under the title, as in the HTML
            self.paragraph(caption, TABLE_PT, color="0.25", gap=0.04)
        self._row(head, cols, xs, x, head_h, line_h, "#e8e8e8", "bold", set(), -1)
        for i, r in enumerate(rows):
            body = cells(r)
            row_h = max(len(c) for c in body) * line_h + 2 * _PAD
            if self.y + row_h > _BOTTOM:
                self.new_page()
                self.line(block.title + " (continued)", 10.0, "bold")
                self._row(head, cols, xs, x, head_h, line_h, "#e8e8e8", "bold", set(), -1)
            shade = "#fff3c4" if i in block.highlight else ("#f7f7f7" if i % 2 else None)
            self._row(body, cols, xs, x, row_h, line_h, shade,
                      "bold" if i in block.highlight else "normal", flagged, i)
        self.y += 0.08

    def _row(self, texts: list[list[str]], cols: list[int], xs: dict, right: float,
             height: float, line_h: float, shade: str | None, weight: str, flagged: set,
             row: int) -> None:
        assert self.fig is not None
        top = self.y
        if shade:
            self._rect(_MARGIN, top, right - _MARGIN, height, shade)
        for k, j in enumerate(cols):
            end = xs[cols[k + 1]] if k + 1 < len(cols) else right
            if (row, j) in flagged:
                self._rect(xs[j], top, end - xs[j], height, "#ffd2c2")
            for n, ln in enumerate(texts[k]):
                self.fig.text(*self._at(xs[j] + _PAD, top + _PAD + (n + 0.8) * line_h), plain(ln),
                              fontsize=TABLE_PT, weight=weight, va="baseline",
                              color="#7a1500" if (row, j) in flagged else "black")
        self.fig.add_artist(plt.Line2D([_MARGIN / PAGE[0], right / PAGE[0]],
                                       [1 - (top + height) / PAGE[1]] * 2, linewidth=0.4,
                                       color="0.6"))
        self.y = top + height

    def _rect(self, x: float, y_top: float, w: float, h: float, color: str) -> None:
        assert self.fig is not None
        self.fig.add_artist(Rectangle((x / PAGE[0], 1 - (y_top + h) / PAGE[1]), w / PAGE[0],
                                      h / PAGE[1], transform=self.fig.transFigure,
                                      facecolor=color, edgecolor="none", zorder=0))

    def code(self, block: Code) -> None:
        self.line(block.title, 10.0, "bold")
        for raw in block.text.splitlines():
            for ln in textwrap.wrap(raw, _chars(TABLE_PT, kind="mono"), subsequent_indent="    ",
                                    drop_whitespace=False) or [""]:
                self.line(ln, TABLE_PT, family="monospace")
        self.y += 0.1

    def attachment(self, block: Attachment, folder: str) -> None:
        href = f"{folder}/{block.name}"
        text = f"{href}: {block.title}" + (f", {block.caption}" if block.caption else "") \
            + f" ({len(block.frame)} rows, CSV)"
        lines = textwrap.wrap(text, _chars(BODY_PT))
        self.room(len(lines) * BODY_PT / 72 * 1.4)
        top = self.y
        for ln in lines:
            self.line(ln, BODY_PT, color="#1a4f8b")
        width = min(_WIDTH, len(href) * BODY_PT * _EM["normal"] / 72)
        self.links.append((self.page, (_MARGIN, top, _MARGIN + width, top + BODY_PT / 72 * 1.4),
                           href))
        self.y += 0.04


_COL_CHARS = 36  # a wider cell wraps


def _column_chunks(header: list[str], rows: list[list[str]]) -> list[tuple[list[int], bool]]:
    """Column groups that fit the page width at 8 pt; the leading text columns (the row's
    name) repeat in every group."""
    char = TABLE_PT * _EM["cell"] / 72
    width = [min(_COL_CHARS, max([len(header[j])] + [len(r[j]) for r in rows])) * char + 2 * _PAD
             for j in range(len(header))]
    if sum(width) <= _WIDTH:
        return [(list(range(len(header))), False)]
    keys = []
    for j in range(len(header)):
        if j >= 2 or any(is_number(r[j]) for r in rows):
            break
        keys.append(j)
    chunks, current = [], list(keys)
    for j in range(len(keys), len(header)):
        if current != keys and sum(width[k] for k in current) + width[j] > _WIDTH:
            chunks.append(current)
            current = list(keys)
        current.append(j)
    chunks.append(current)
    return [(c, i > 0) for i, c in enumerate(chunks)]


def _blocks(part: _Part, section: Section, folder: str) -> None:
    for block in section.blocks:
        if isinstance(block, Text):
            part.paragraph(block.text)
        elif isinstance(block, Table):
            part.table(block)
        elif isinstance(block, Figure):
            part.figure(block)
        elif isinstance(block, Code):
            part.code(block)
        elif isinstance(block, Attachment):
            part.attachment(block, folder)
        else:
            raise ValueError(f"cannot render a {type(block).__name__} block; use Text, Table, "
                             "Figure, Code or Attachment")


def _front(part: _Part, report: Report) -> None:
    part.new_page()
    for ln in textwrap.wrap(report.title, _chars(16.0, kind="bold")):
        part.line(ln, 16.0, "bold")
    if report.subtitle:
        part.paragraph(report.subtitle, 10.0, color="0.3")
    part.marks.append(("Finding", 0, part.page))
    head: Headline | None = report.headline
    if head is None:
        return
    part.y += 0.05
    part.paragraph(head.text, 10.5, "bold", color="#163c63")
    if head.figure is not None:  # small enough to leave the table room on page i
        part.figure(head.figure, title=False, max_height=_FRONT_FIG_H)
    if head.table is not None:
        part.table(head.table)


def _contents(part: _Part, report: Report, starts: list[int]) -> None:
    part.new_page()
    part.line("Contents", 14.0, "bold")
    part.y += 0.1
    entries = [("Finding", 0, False)] + [(section_title(s), starts[i], s.appendix)
                                         for i, s in enumerate(report.sections)]
    for title, page, appendix in entries:
        if part.y + 0.3 > _BOTTOM:
            part.new_page()
        top = part.y
        x = _MARGIN + (0.25 if appendix else 0)
        label = part.label(page)
        assert part.fig is not None
        part.fig.text(*part._at(x, top + 11 / 72), plain(title), fontsize=11, color="#1a4f8b")
        part.fig.text(*part._at(_MARGIN + _WIDTH, top + 11 / 72), plain(label), fontsize=11,
                      ha="right")
        part.links.append((part.page, (x, top, _MARGIN + _WIDTH, top + 11 / 72 * 1.5), page))
        part.y += 11 / 72 * 1.7


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


def render_pdf(report: Report, *, data_folder: str = "report-data") -> bytes:
    """The report as PDF bytes (A4 pages, outline, page labels, linked contents)."""
    from pypdf import PdfReader, PdfWriter, Transformation
    from pypdf.annotations import Link

    n_contents = math.ceil((len(report.sections) + 1) / _CONTENTS_LINES)
    n_front = [0]

    def label(i: int) -> str:
        """Printed page number of document page ``i``: i, ii, ... before the body, then 1, 2, ..."""
        return _roman(i + 1) if i < n_front[0] else str(i - n_front[0] + 1)

    with _quiet("fontTools"), report_style():
        front = _Part(label, 0)
        n_front[0] = 10 ** 6  # the front pages are all roman
        _front(front, report)
        front_bytes = front.close()
        body_offset = front.pages + n_contents
        n_front[0] = body_offset
        body = _Part(label, body_offset)
        starts = []
        for s in report.sections:
            body.heading(section_title(s))
            starts.append(body.page)
            body.marks.append((s.title, 1 if s.appendix else 0, body.page))
            _blocks(body, s, data_folder)
        body_bytes = body.close()
        contents = _Part(label, front.pages)
        _contents(contents, report, starts)
        contents_bytes = contents.close()
    if contents.pages != n_contents:
        raise ValueError(f"contents took {contents.pages} pages, {n_contents} reserved")

    writer = PdfWriter()
    parts = (front, contents, body)
    for part, data in zip(parts, (front_bytes, contents_bytes, body_bytes)):
        if part.pages:
            writer.append(PdfReader(io.BytesIO(data)))
    for part in parts:
        for placed in part.figures:
            page = PdfReader(io.BytesIO(placed.pdf)).pages[0]
            writer.pages[placed.page].merge_transformed_page(
                page, Transformation().scale(placed.scale).translate(placed.x * 72, placed.y * 72))
        for index, (x0, top, x1, bottom), target in part.links:
            rect = (x0 * 72, (PAGE[1] - bottom) * 72, x1 * 72, (PAGE[1] - top) * 72)
            link = (Link(rect=rect, target_page_index=target) if isinstance(target, int)
                    else Link(rect=rect, url=str(target)))
            writer.add_annotation(index, link)
    appendix = None
    for title, level, page in front.marks + body.marks:
        if level == 1:
            if appendix is None:
                appendix = writer.add_outline_item(title="Appendix", page_number=page)
            writer.add_outline_item(title=title, page_number=page, parent=appendix)
        else:
            writer.add_outline_item(title=title, page_number=page)
    writer.set_page_label(0, body_offset - 1, style="/r", start=1)
    if len(writer.pages) > body_offset:
        writer.set_page_label(body_offset, len(writer.pages) - 1, style="/D", start=1)
    writer.page_mode = "/UseOutlines"
    writer.add_metadata({"/Title": report.title, "/Creator": "memloss", "/Producer": "memloss"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
