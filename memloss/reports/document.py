"""What a report says, independent of how it is drawn.

A :class:`Report` is a title and a list of :class:`Section` s; a section holds blocks:
:class:`Text` (paragraphs), :class:`Table` (a pandas DataFrame), :class:`Figure` (a plot
description, drawn later) and :class:`Code` (preformatted text such as a config). The
HTML and PDF renderers turn the same document into their formats, so both show the same
content.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, Union

import pandas as pd

__all__ = ["Text", "Table", "Figure", "Code", "Block", "Section", "Report", "Drawable", "slug"]


class Drawable(Protocol):
    """A plot description: called, it returns a matplotlib figure."""

    def __call__(self) -> "object": ...


@dataclass(frozen=True)
class Text:
    """One or more paragraphs of plain text (blank lines separate paragraphs)."""

    text: str


@dataclass(frozen=True)
class Table:
    """A titled table; ``frame`` is shown with its columns in order, without the index."""

    title: str
    frame: pd.DataFrame
    caption: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.frame, pd.DataFrame):
            raise ValueError(f"Table {self.title!r} needs a pandas DataFrame, got "
                             f"{type(self.frame).__name__}")


@dataclass(frozen=True)
class Figure:
    """A titled figure; ``plot`` describes it and draws it when called."""

    title: str
    plot: Drawable
    caption: str = ""


@dataclass(frozen=True)
class Code:
    """Preformatted text, e.g. a run's resolved config as JSON."""

    title: str
    text: str


Block = Union[Text, Table, Figure, Code]


@dataclass(frozen=True)
class Section:
    """A titled part of the report (an ``<h2>`` in HTML, a title page block in the PDF)."""

    title: str
    blocks: tuple[Block, ...] = ()

    @property
    def anchor(self) -> str:
        return slug(self.title)


@dataclass(frozen=True)
class Report:
    title: str
    sections: tuple[Section, ...] = field(default_factory=tuple)
    subtitle: str = ""

    def __post_init__(self) -> None:
        anchors = [s.anchor for s in self.sections]
        dup = sorted({a for a in anchors if anchors.count(a) > 1})
        if dup:
            raise ValueError(f"report {self.title!r} has sections with the same title: {dup}; "
                             "give each section a distinct title")


def slug(text: str) -> str:
    """``"Test-time scaling (Table 1)"`` -> ``"test-time-scaling-table-1"``."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s or "section"
