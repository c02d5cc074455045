"""What a report says, independent of how it is drawn.

A :class:`Report` is a title, a :class:`Headline` (the finding, first: one or two sentences
with the measured numbers, the decisive chart and the table beside the paper) and a list of
:class:`Section` s (body, then appendix); a section holds blocks: :class:`Text`
(paragraphs), :class:`Table` (a pandas DataFrame, with :class:`Flag` s on cells that deviate),
:class:`Figure` (a plot description, drawn later), :class:`Code` (preformatted text) and
:class:`Attachment` (a table written as a CSV file beside the report and linked). The HTML
and PDF renderers turn the same document into their formats, so both show the same content.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, Union

import pandas as pd

__all__ = ["Text", "Table", "Figure", "Code", "Attachment", "Flag", "Headline", "Block", "Section",
           "Report", "Drawable", "slug"]


class Drawable(Protocol):
    """A plot description: called, it returns a matplotlib figure."""

    def __call__(self) -> "object": ...


@dataclass(frozen=True)
class Text:
    """One or more paragraphs of plain text (blank lines separate paragraphs)."""

    text: str


@dataclass(frozen=True)
class Flag:
    """A cell that deviates (from the paper beyond the stated tolerance, or below chance):
    ``row`` (position in the frame), ``column`` (its name) and ``note`` (what deviates and
    the likely reason). Renderers mark the cell and list the notes under the table."""

    row: int
    column: str
    note: str


@dataclass(frozen=True)
class Table:
    """A titled table; ``frame`` is shown with its columns in order, without the index.
    ``flags`` mark deviating cells; ``highlight`` lists row positions to emphasise (the
    decisive rows)."""

    title: str
    frame: pd.DataFrame
    caption: str = ""
    flags: tuple[Flag, ...] = ()
    highlight: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.frame, pd.DataFrame):
            raise ValueError(f"Table {self.title!r} needs a pandas DataFrame, got "
                             f"{type(self.frame).__name__}")
        cols = [str(c) for c in self.frame.columns]
        for f in self.flags:
            if f.column not in cols or not 0 <= f.row < len(self.frame):
                raise ValueError(f"Table {self.title!r}: flag on row {f.row}, column "
                                 f"{f.column!r} is outside the table (columns {cols}, "
                                 f"{len(self.frame)} rows)")

    def flag_marks(self) -> dict[tuple[int, str], int]:
        """``(row, column) -> note number`` (1-based, in the order of :attr:`flags`)."""
        return {(f.row, f.column): i for i, f in enumerate(self.flags, 1)}


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


@dataclass(frozen=True)
class Attachment:
    """A table too long to read inline: written as ``name`` (a CSV file) into the folder
    beside the report and linked from it."""

    title: str
    name: str
    frame: pd.DataFrame
    caption: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.csv", self.name):
            raise ValueError(f"attachment {self.title!r}: file name {self.name!r} must be a plain "
                             "CSV file name such as 'state-decay.csv'")
        if not isinstance(self.frame, pd.DataFrame):
            raise ValueError(f"attachment {self.title!r} needs a pandas DataFrame")


Block = Union[Text, Table, Figure, Code, Attachment]


@dataclass(frozen=True)
class Headline:
    """The finding, shown first: ``text`` states the measured result with its numbers (one
    or two sentences), ``figure`` is the decisive chart and ``table`` the numbers beside
    the paper's. Both renderers put all three on the first screen / page."""

    text: str
    figure: Figure | None = None
    table: Table | None = None


@dataclass(frozen=True)
class Section:
    """A titled part of the report (an ``<h2>`` in HTML, a bookmarked page block in the
    PDF). ``appendix`` sections come after the body (raw tables, settings)."""

    title: str
    blocks: tuple[Block, ...] = ()
    appendix: bool = False

    @property
    def anchor(self) -> str:
        return slug(self.title)


@dataclass(frozen=True)
class Report:
    title: str
    sections: tuple[Section, ...] = field(default_factory=tuple)
    subtitle: str = ""
    headline: Headline | None = None

    def __post_init__(self) -> None:
        order = [s.appendix for s in self.sections]
        if order != sorted(order):
            raise ValueError(f"report {self.title!r}: appendix sections must come after the body")
        names = [b.name for s in self.sections for b in s.blocks if isinstance(b, Attachment)]
        dup_files = sorted({n for n in names if names.count(n) > 1})
        if dup_files:
            raise ValueError(f"report {self.title!r} attaches the same file twice: {dup_files}")
        anchors = [s.anchor for s in self.sections] + (["finding"] if self.headline else [])
        dup = sorted({a for a in anchors if anchors.count(a) > 1})
        if dup:
            raise ValueError(f"report {self.title!r} has sections with the same title: {dup}; "
                             "give each section a distinct title")

    @property
    def attachments(self) -> list[Attachment]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Attachment)]


def slug(text: str) -> str:
    """``"Test-time scaling (Table 1)"`` -> ``"test-time-scaling-table-1"``."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s or "section"
