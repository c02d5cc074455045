"""Matplotlib settings that make figures reproducible byte for byte.

Fixed fonts (DejaVu, shipped with matplotlib), a fixed SVG hash salt (element ids), no
dates in SVG or PDF metadata, and the non-interactive Agg backend.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

__all__ = ["RC", "SVG_METADATA", "PDF_METADATA", "report_style", "PALETTE", "plain"]

#: rc parameters applied while drawing and saving every figure
RC: dict[str, object] = {
    "svg.hashsalt": "memloss-report",
    "svg.fonttype": "none",  # text stays text (a third smaller than glyph paths; DejaVu Sans)
    "pdf.fonttype": 42,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.monospace": ["DejaVu Sans Mono"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "path.simplify": True,
    "axes.formatter.use_mathtext": False,
}
SVG_METADATA: dict[str, object] = {"Date": None, "Creator": "memloss"}
PDF_METADATA: dict[str, object] = {"CreationDate": None, "ModDate": None, "Creator": "memloss",
                                   "Producer": "memloss"}
PALETTE = "tab10"


@contextlib.contextmanager
def report_style() -> Iterator[None]:
    """Draw inside this context: seaborn's ticks theme plus the reproducible settings."""
    with plt.style.context("default"), sns.axes_style("ticks"), sns.plotting_context("paper"), \
            matplotlib.rc_context(RC):
        yield


def plain(text: str) -> str:
    """``text`` as matplotlib shows it literally: every ``$`` escaped, so a run name, config
    value, metric key or title never reaches matplotlib's TeX (mathtext) parser. Idempotent
    (an already escaped ``\\$`` stays one), so a label may pass through it twice."""
    return str(text).replace("\\$", "$").replace("$", "\\$")
