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
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .style import PALETTE, report_style

__all__ = ["LinePlot", "BarPlot", "categorical", "ordered_unique"]

_FACET_W, _FACET_H = 3.6, 2.7
_BOOT_SEED = 0
_N_BOOT = 200


def ordered_unique(values: "pd.Series") -> list:
    """Unique values in order of first appearance (the order the data was described in)."""
    return list(dict.fromkeys(values.tolist()))


def categorical(frame: pd.DataFrame, columns: "list[str | None]") -> pd.DataFrame:
    """Copy ``frame`` with ``columns`` cast to ``object`` (seaborn 0.13 + pandas 3 string
    dtype trap: hue/style columns must be plain objects)."""
    out = frame.copy()
    for c in columns:
        if c is not None and c in out.columns:
            out[c] = out[c].astype(str).astype(object)
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


def _grid(n: int, col_wrap: int) -> tuple["plt.Figure", list]:
    ncols = max(1, min(n, col_wrap))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(_FACET_W * ncols + 1.8, _FACET_H * nrows),
                             squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _figure_legend(fig: "plt.Figure", axes: list) -> None:
    handles, labels, seen = [], [], set()
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
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)


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
    are positive and span more than three decades.
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

    def __post_init__(self) -> None:
        _check_columns("LinePlot", self.data, {"x": self.x, "y": self.y, "hue": self.hue,
                                               "style": self.style, "col": self.col})
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
            fig, axes = _grid(len(panels), self.col_wrap)
            for ax, panel in zip(axes, panels):
                sub = df if panel is None else df[df[self.col] == panel]
                sns.lineplot(data=sub, x=self.x, y=self.y, hue=self.hue, style=self.style,
                             hue_order=hue_order, style_order=style_order, palette=palette,
                             errorbar=("ci", 95), n_boot=_N_BOOT, seed=_BOOT_SEED, ax=ax,
                             linewidth=1.3)
                log = self.logy if self.logy is not None else _wants_log(sub[self.y].to_numpy(float))
                if log:
                    ax.set_yscale("log")
                ax.set_title("" if panel is None else str(panel))
                ax.set_xlabel(self.xlabel or self.x)
                ax.set_ylabel(self.ylabel or self.y)
            _figure_legend(fig, axes)
            if self.title:
                fig.suptitle(self.title)
            fig.tight_layout()
        return fig


@dataclass(frozen=True)
class BarPlot:
    """Bars of ``y`` per category ``x``, one colour per ``hue``, one panel per ``col``;
    replicates give a 95% confidence interval."""

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

    def __post_init__(self) -> None:
        _check_columns("BarPlot", self.data, {"x": self.x, "y": self.y, "hue": self.hue,
                                              "col": self.col})

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
                ax.set_title("" if panel is None else str(panel))
                ax.set_xlabel(self.xlabel or self.x)
                ax.set_ylabel(self.ylabel or self.y)
                if self.ylim is not None:
                    ax.set_ylim(*self.ylim)
                if len(order) > 4 or max((len(str(o)) for o in order), default=0) > 10:
                    ax.tick_params(axis="x", labelrotation=45)
                    for lab in ax.get_xticklabels():
                        lab.set_horizontalalignment("right")
            _figure_legend(fig, axes)
            if self.title:
                fig.suptitle(self.title)
            fig.tight_layout()
        return fig
