"""CoNLL-2003 NER files: one token per line (``word POS chunk NER``), blank lines between
sentences, ``-DOCSTART-`` lines between documents; tags in IOB1 (the original release)
or IOB2, converted to IOB2.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .errors import DataError
from .text import read_lines

__all__ = ["Sentence", "read_conll", "iob1_to_iob2", "check_tag", "CONLL_FORMAT"]

CONLL_FORMAT = ("CoNLL-2003 columns: 'word POS chunk NER-tag' per line (the tag in the last "
                "column: O, B-TYPE or I-TYPE), blank lines between sentences")
DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class Sentence:
    words: tuple[str, ...]
    tags: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.words)


def check_tag(tag: str) -> bool:
    """Whether ``tag`` is an IOB tag: ``O``, ``B-TYPE`` or ``I-TYPE``."""
    return tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-"))


def iob1_to_iob2(tags: Sequence[str]) -> tuple[str, ...]:
    """IOB1 (``I-`` starts an entity unless it follows the same type) -> IOB2 (every entity
    starts with ``B-``). IOB2 input is returned unchanged."""
    out: list[str] = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return tuple(out)


def read_conll(path: "str | os.PathLike[str]", *, tag_column: int = -1,
               iob2: bool = True) -> list[Sentence]:
    """Sentences of a CoNLL file; ``-DOCSTART-`` lines are dropped. A line with a different
    number of columns than the first, or a tag that is not IOB, raises :class:`DataError`
    naming the line."""
    p = Path(path)
    lines = read_lines(p, expected=CONLL_FORMAT)
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    ncol: int | None = None

    def flush() -> None:
        if words:
            t = iob1_to_iob2(tags) if iob2 else tuple(tags)
            sentences.append(Sentence(tuple(words), t))
            words.clear()
            tags.clear()

    for lineno, line in enumerate(lines, 1):
        cols = line.split()
        if not cols:
            flush()
            continue
        if cols[0] == DOCSTART:
            flush()
            continue
        if ncol is None:
            ncol = len(cols)
            if ncol < 2:
                raise DataError(p, f"line {lineno} has one column {line!r}", CONLL_FORMAT)
        if len(cols) != ncol:
            raise DataError(p, f"line {lineno} has {len(cols)} columns, earlier lines {ncol}: "
                            f"{line!r}", CONLL_FORMAT)
        tag = cols[tag_column]
        if not check_tag(tag):
            raise DataError(p, f"line {lineno}: {tag!r} is not an IOB tag", CONLL_FORMAT)
        words.append(cols[0])
        tags.append(tag)
    flush()
    if not sentences:
        raise DataError(p, "no sentences (only -DOCSTART- or blank lines)", CONLL_FORMAT)
    return sentences
