"""Plot descriptions: small frozen dataclasses that draw a seaborn figure when called.

Describing (which data, which columns map to what) is separate from drawing, so reports
can be assembled, compared and tested without drawing anything. Every plot draws inside
:func:`memloss.reports.style.report_style` and returns a new matplotlib figure.

Replicates (several rows for the same x, hue and style, e.g. several seeds) are drawn as
the mean with a 95% bootstrap confidence band (fixed bootstrap seed, so figures are
reproducible).
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .style import PALETTE, plain, report_style

__all__ = ["LinePlot", "BarPlot", "categorical", "ordered_unique"]

_FACET_W, _FACET_H = 2.45, 2.0
_BOOT_SEED = 0
_N_BOOT = 200


def ordered_unique(values: "pd.Series") -> list:
    """Unique values in order of first appearance (the order the data was described in)."""
    return list(dict.fromkeys(values.tolist()))


def categorical(frame: pd.DataFrame, columns: "list[str | None]") -> pd.DataFrame:
    """Copy ``frame`` with ``columns`` cast to ``object`` (seaborn 0.13 + pandas 3 string
    dtype trap: hue/style columns must be plain objects), their text escaped for
    matplotlib (a ``$`` in a label is shown, not parsed as TeX)."""
    out = frame.copy()
    for c in columns:
        if c is not None and c in out.columns:
            out[c] = out[c].astype(str).map(plain).astype(object)
    return out


def _check_columns(kind: str, frame: pd.DataFrame, columns: "dict[str, str | None]") -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{kind} needs a pandas DataFrame, got {type(frame).__name__}")
    for role, col in columns.items():
        if col is not None and col not in frame.columns:
            raise ValueError(f"{kind}: {role} column {col!r} is not in the data; columns are "
                             f"{list(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{kind}: the data is empty; nothing to draw")


def _check_ylabel(kind: str, y: str, ylabel: "str | None", panel_ylabels: "dict | None") -> None:
    if y == "value" and not ylabel and not panel_ylabels:
        raise ValueError(f"{kind}: y is the generic 'value' column; give ylabel (words and a "
                         "unit, e.g. 'accuracy (fraction correct)')")


def _grid(n: int, col_wrap: int, sharey: bool = False) -> tuple["plt.Figure", list]:
    ncols = max(1, min(n, col_wrap))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(_FACET_W * ncols + 0.4, _FACET_H * nrows + 0.5),
                             squeeze=False, sharey=sharey)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _figure_legend(fig: "plt.Figure", axes: list, title: str | None = None,
                   headings: "tuple[str | None, ...]" = ()) -> None:
    """One legend for the whole figure, below the panels (the figure keeps the page width).
    ``headings``: the hue and style column names, which seaborn adds as entries of their
    own (group headings without a line) when both are set; they are left out."""
    handles, labels = [], []
    seen = {plain(h) for h in headings if h}
    for ax in axes:
        leg = ax.get_legend()
        h, l = ax.get_legend_handles_labels()
        for hi, li in zip(h, l):
            if li not in seen:
                seen.add(li)
                handles.append(hi)
                labels.append(li)
        if leg is not None:
            leg.remove()
    if handles:
        fig.tight_layout()
        ncol = max(1, min(len(labels), 4 if max(len(x) for x in labels) > 14 else 6))
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol,
                   frameon=False, title=plain(title) if title else None)


def _panel_labels(fig: "plt.Figure", ax: "plt.Axes", panel: object, xlabel: str, ylabel: str) -> None:
    """Panel title and axis labels, wrapped to the panel's size (9 pt DejaVu: about 34
    characters across a panel, 28 along its height)."""
    ax.set_title("" if panel is None else "\n".join(textwrap.wrap(plain(str(panel)), 34)),
                 fontsize=9)
    ax.set_xlabel("\n".join(textwrap.wrap(plain(xlabel), 40)))
    ax.set_ylabel("\n".join(textwrap.wrap(plain(ylabel), 30)))


def _colors(n: int) -> list:
    """``n`` distinct colours: the report palette, or evenly spaced hues beyond ten."""
    return sns.color_palette(PALETTE if n <= 10 else "husl", n)


def _wants_log(values: np.ndarray) -> bool:
    v = values[np.isfinite(values)]
    return bool(v.size) and bool((v > 0).all()) and v.max() / v.min() > 1e3


@dataclass(frozen=True)
class LinePlot:
    """Lines of ``y`` over a numeric ``x``, one colour per ``hue``, one dash per ``style``,
    one panel per value of ``col``.

    ``logy``: ``True``/``False``, or ``None`` to use a log axis per panel when its values
    are positive and span more than three decades. ``ylabel`` (words and unit) labels every
    panel, or ``panel_ylabels`` each panel by its ``col`` value; the generic ``value``
    column needs one of them. ``markers`` draws a marker at every point (sparse x, e.g.
    lengths). ``diagonal`` draws the line y = x (reliability diagrams). ``sharey``: every
    panel on the same y axis (small multiples compared across panels).
    """

    data: pd.DataFrame
    x: str
    y: str = "value"
    hue: str | None = None
    style: str | None = None
    col: str | None = None
    logy: bool | None = None
    title: str = ""
    xlabel: str | None = None
    ylabel: str | None = None
    col_wrap: int = 3
    reference: str | None = None  # hue value drawn as a thin black reference (e.g. analytic)
    panel_ylabels: dict[str, str] | None = None
    markers: bool = False
    diagonal: bool = False
    legend_title: str | None = None
    sharey: bool = False

    def __post_init__(self) -> None:
        _check_columns("LinePlot", self.data, {"x": self.x, "y": self.y, "hue": self.hue,
                                               "style": self.style, "col": self.col})
        _check_ylabel("LinePlot", self.y, self.ylabel, self.panel_ylabels)
        if not pd.api.types.is_numeric_dtype(self.data[self.x]):
            raise ValueError(f"LinePlot: x column {self.x!r} must be numeric, got "
                             f"{self.data[self.x].dtype}; use BarPlot for categories")

    def __call__(self) -> "plt.Figure":
        df = categorical(self.data, [self.hue, self.style, self.col])
        df[self.y] = pd.to_numeric(df[self.y], errors="coerce")
        panels = ordered_unique(df[self.col]) if self.col else [None]
        hue_order = ordered_unique(df[self.hue]) if self.hue else None
        style_order = ordered_unique(df[self.style]) if self.style else None
        with report_style():
            palette = (dict(zip(hue_order, _colors(len(hue_order)))) if hue_order else None)
            if palette is not None and self.reference in palette:
                palette[self.reference] = (0.0, 0.0, 0.0)
            fig, axes = _grid(len(panels), self.col_wrap, self.sharey)
            for ax, panel in zip(axes, panels):
                sub = df if panel is None else df[df[self.col] == panel]
                sns.lineplot(data=sub, x=self.x, y=self.y, hue=self.hue, style=self.style,
                             hue_order=hue_order, style_order=style_order, palette=palette,
                             errorbar=("ci", 95), n_boot=_N_BOOT, seed=_BOOT_SEED, ax=ax,
                             linewidth=1.3, marker="o" if self.markers else None,
                             markersize=3.5)
                if self.diagonal:
                    ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":",
                            zorder=0)
                log = self.logy if self.logy is not None else _wants_log(
                    (df if self.sharey else sub)[self.y].to_numpy(float))
                if log:
                    ax.set_yscale("log")
                labels = {plain(k): v for k, v in (self.panel_ylabels or {}).items()}
                label = labels.get(str(panel), "") or self.ylabel or self.y
                _panel_labels(fig, ax, panel, self.xlabel or self.x, label)
            if self.title:
                fig.suptitle(plain(self.title))
            _figure_legend(fig, axes, self.legend_title, (self.hue, self.style))
        return fig


@dataclass(frozen=True)
class BarPlot:
    """Bars of ``y`` per category ``x``, one colour per ``hue``, one panel per ``col``;
    replicates give a 95% confidence interval.

    ``chance``: a dashed line at the chance level. ``paper``: a column of the paper's
    numbers (NaN where there is none), drawn as a black marker on each bar (``paper_bound``:
    a column holding ``"<"`` or ``">"`` for numbers reported as a bound, drawn as a
    triangle pointing that way)."""

    data: pd.DataFrame
    x: str
    y: str = "value"
    hue: str | None = None
    col: str | None = None
    title: str = ""
    xlabel: str | None = None
    ylabel: str | None = None
    col_wrap: int = 3
    ylim: tuple[float, float] | None = None
    chance: float | None = None
    paper: str | None = None
    paper_bound: str | None = None
    legend_title: str | None = None

    def __post_init__(self) -> None:
        _check_columns("BarPlot", self.data, {"x": self.x, "y": self.y, "hue": self.hue,
                                              "col": self.col, "paper": self.paper,
                                              "paper_bound": self.paper_bound})
        _check_ylabel("BarPlot", self.y, self.ylabel, None)

    def __call__(self) -> "plt.Figure":
        df = categorical(self.data, [self.x, self.hue, self.col])
        df[self.y] = pd.to_numeric(df[self.y], errors="coerce")
        panels = ordered_unique(df[self.col]) if self.col else [None]
        order = ordered_unique(df[self.x])
        hue_order = ordered_unique(df[self.hue]) if self.hue else None
        with report_style():
            fig, axes = _grid(len(panels), self.col_wrap)
            for ax, panel in zip(axes, panels):
                sub = df if panel is None else df[df[self.col] == panel]
                sns.barplot(data=sub, x=self.x, y=self.y, hue=self.hue, order=order,
                            hue_order=hue_order,
                            palette=_colors(len(hue_order)) if hue_order else None,
                            errorbar=("ci", 95), n_boot=_N_BOOT, seed=_BOOT_SEED, ax=ax)
                _panel_labels(fig, ax, panel, self.xlabel or self.x, self.ylabel or self.y)
                if self.ylim is not None:
                    ax.set_ylim(*self.ylim)
                if self.paper is not None:
                    self._paper_marks(ax, sub, order, hue_order)
                if self.chance is not None:
                    ax.axhline(self.chance, color="0.25", linestyle="--", linewidth=0.9,
                               label=f"chance ({self.chance:g})", zorder=3)
                if len(order) > 4 or max((len(str(o)) for o in order), default=0) > 10:
                    ax.tick_params(axis="x", labelrotation=45)
                    for lab in ax.get_xticklabels():
                        lab.set_horizontalalignment("right")
            if self.title:
                fig.suptitle(plain(self.title))
            _figure_legend(fig, axes, self.legend_title, (self.hue,))
        return fig

    def _paper_marks(self, ax: "plt.Axes", sub: pd.DataFrame, order: list,
                     hue_order: list | None) -> None:
        """A black marker at the paper's number on each bar that has one."""
        levels = hue_order if hue_order is not None else [None]
        first = True
        for container, level in zip(ax.containers, levels):
            for patch, category in zip(container.patches, order):
                rows = sub[(sub[self.x] == category)
                           & ((sub[self.hue] == level) if level is not None else True)]
                values = pd.to_numeric(rows[self.paper], errors="coerce").dropna()
                if values.empty:
                    continue
                bound = str(rows[self.paper_bound].iloc[0]) if self.paper_bound else ""
                marker = {"<": "v", ">": "^"}.get(bound, "_")
                ax.plot([patch.get_x() + patch.get_width() / 2], [float(values.iloc[0])],
                        marker=marker, color="black", markersize=7 if marker == "_" else 4.5,
                        markeredgewidth=2 if marker == "_" else 0.5, linestyle="none",
                        label="paper" if first else "_nolegend_", zorder=4)
                first = False
