"""Helpers shared by the HTML and PDF renderers: cell formatting and figure drawing."""
from __future__ import annotations

import io
import math
import re
from typing import Callable

import matplotlib.pyplot as plt
import pandas as pd

from .document import Figure, Section
from .style import SVG_METADATA, report_style

__all__ = ["format_cell", "formatted_rows", "draw", "figure_svg", "is_number", "section_title"]


def is_number(text: str) -> bool:
    """True for a number cell (``0.25``, ``<0.25``, ``6.5%``, ``6.5% (25%)``): aligned right."""
    try:
        float(text.lstrip("<>").rstrip("%").split(" ")[0].rstrip("%"))
        return True
    except ValueError:
        return False


def section_title(section: Section) -> str:
    """A section's heading: appendix sections say so."""
    return f"Appendix: {section.title}" if section.appendix else section.title


def format_cell(value: object) -> str:
    """Table cell text: 4 significant digits for floats, '' for missing values."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 1e6:
            return str(int(value))
        return f"{value:.4g}"
    try:
        if pd.isna(value):  # pd.NA, NaT
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def formatted_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Column names and rows of cell strings, in the frame's order."""
    header = [str(c) for c in frame.columns]
    rows = [[format_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    return header, rows


def draw(figure: Figure) -> "plt.Figure":
    """Draw a :class:`~memloss.reports.document.Figure`; errors name the figure."""
    fig = figure.plot()
    if not isinstance(fig, plt.Figure):
        raise ValueError(f"figure {figure.title!r}: its plot returned {type(fig).__name__}, "
                         "expected a matplotlib Figure")
    return fig


_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_REF = re.compile(r'(id="|href="#|url\(#)([^")]+)')


def figure_svg(fig: "plt.Figure", prefix: str, close: Callable[["plt.Figure"], None] = plt.close
               ) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog), with element ids prefixed
    by ``prefix`` so that several figures can share one HTML document."""
    buf = io.BytesIO()
    with report_style():
        fig.savefig(buf, format="svg", metadata=SVG_METADATA, bbox_inches="tight")
    close(fig)
    svg = buf.getvalue().decode("utf-8")
    svg = svg[svg.index("<svg"):]
    svg = _METADATA.sub("", svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)
    return svg
