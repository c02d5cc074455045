"""Sentiment data: SemEval Twitter TSV files (3 classes) and Pang & Lee's scale data
(movie reviews with a rating in [0, 1]).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError
from .text import read_lines

__all__ = ["LABELS", "Example", "Review", "read_semeval", "read_scale_data",
           "SEMEVAL_FORMAT", "SCALE_FORMAT"]

#: class ids of the three SemEval classes
LABELS = ("negative", "neutral", "positive")
_ALIASES = {"negative": 0, "neutral": 1, "objective": 1, "objective-or-neutral": 1,
            "positive": 2}
SEMEVAL_FORMAT = ("SemEval Twitter TSV: tab-separated columns ending in "
                  "'<label>\\t<tweet text>', label one of positive/neutral/negative")
SCALE_FORMAT = ("Pang & Lee scale data: <root>/<Author>/subj.<Author> (one review per line) "
                "and rating.<Author> (one rating in [0, 1] per line, same line count)")
_NOT_AVAILABLE = "not available"


@dataclass(frozen=True)
class Example:
    text: str
    label: int


@dataclass(frozen=True)
class Review:
    text: str
    score: float
    author: str


def read_semeval(path: "str | os.PathLike[str]") -> list[Example]:
    """Tweets and labels (0 negative, 1 neutral, 2 positive) of a SemEval TSV file: any of the
    yearly layouts (``id<TAB>label<TAB>text`` or ``sid<TAB>uid<TAB>label<TAB>text``).
    Tweets no longer downloadable (text ``Not Available``) are skipped."""
    p = Path(path)
    out: list[Example] = []
    for lineno, line in enumerate(read_lines(p, expected=SEMEVAL_FORMAT), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            raise DataError(p, f"line {lineno} has no tab-separated label and text: {line[:60]!r}",
                            SEMEVAL_FORMAT)
        label = cols[-2].strip().strip('"').lower()
        if label not in _ALIASES:
            raise DataError(p, f"line {lineno}: unknown label {cols[-2]!r}", SEMEVAL_FORMAT)
        text = cols[-1].strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1].strip()
        if not text or text.lower() == _NOT_AVAILABLE:
            continue
        out.append(Example(text, _ALIASES[label]))
    if not out:
        raise DataError(p, "no labelled tweets with text", SEMEVAL_FORMAT)
    return out


def read_scale_data(root: "str | os.PathLike[str]") -> list[Review]:
    """All reviews of Pang & Lee's scale data under ``root`` (``scaledata/`` itself, or a
    directory holding it), every author, in author-name order."""
    r = Path(root)
    if (r / "scaledata").is_dir():
        r = r / "scaledata"
    if not r.is_dir():
        raise DataError(r, "directory not found", SCALE_FORMAT)
    authors = sorted(d.name for d in r.iterdir() if d.is_dir() and (d / f"subj.{d.name}").exists())
    if not authors:
        raise DataError(r, "no <Author>/subj.<Author> files", SCALE_FORMAT)
    out: list[Review] = []
    for a in authors:
        subj = read_lines(r / a / f"subj.{a}", expected=SCALE_FORMAT, encoding="latin-1")
        rating_path = r / a / f"rating.{a}"
        ratings = read_lines(rating_path, expected=SCALE_FORMAT)
        if len(subj) != len(ratings):
            raise DataError(rating_path, f"{len(ratings)} ratings for {len(subj)} reviews",
                            SCALE_FORMAT)
        for lineno, (text, rating) in enumerate(zip(subj, ratings), 1):
            try:
                score = float(rating)
            except ValueError:
                raise DataError(rating_path, f"line {lineno}: {rating!r} is not a number",
                                SCALE_FORMAT) from None
            if not 0.0 <= score <= 1.0:
                raise DataError(rating_path, f"line {lineno}: rating {score} outside [0, 1]",
                                SCALE_FORMAT)
            out.append(Review(text, score, a))
    return out
