"""Text corpora as token streams: words with ``<eos>`` per line (as in PTB), characters,
and a vocabulary with a size cap, ``<unk>`` and optional lower-casing.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch

from .errors import DataError

__all__ = ["EOS", "UNK", "PAD", "Vocab", "read_lines", "word_tokens", "char_tokens",
           "ptb_char_tokens", "words_to_ptb_chars", "tokenize", "TEXT_FORMAT"]

EOS = "<eos>"
UNK = "<unk>"
PAD = "<pad>"
#: the character PTB's char files use between words
PTB_SPACE = "_"
TEXT_FORMAT = "a UTF-8 text file, one sentence or line of text per line"
_PUNCT = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]")


def read_lines(path: "str | os.PathLike[str]", *, expected: str = TEXT_FORMAT,
               encoding: str = "utf-8") -> list[str]:
    """The lines of a text file (newline stripped); a missing, empty (nothing but
    whitespace) or undecodable file raises :class:`DataError`."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "file not found", expected)
    try:
        text = p.read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        raise DataError(p, f"not {encoding} text (byte {e.start}: {e.reason})", expected) from None
    if not text.strip():
        raise DataError(p, "file is empty", expected)
    return text.splitlines()


def tokenize(line: str, *, lower: bool = False, split_punct: bool = False) -> list[str]:
    """Words of one line: whitespace split, or words and single punctuation marks."""
    if lower:
        line = line.lower()
    return _PUNCT.findall(line) if split_punct else line.split()


def word_tokens(lines: Iterable[str], *, lower: bool = False, split_punct: bool = False,
                eos: bool = True, skip_blank: bool = True) -> list[str]:
    """One token stream, ``<eos>`` after every line (PTB convention; Zaremba et al.)."""
    out: list[str] = []
    for line in lines:
        words = tokenize(line, lower=lower, split_punct=split_punct)
        if not words and skip_blank:
            continue
        out.extend(words)
        if eos:
            out.append(EOS)
    return out


def char_tokens(lines: Iterable[str], *, lower: bool = False) -> list[str]:
    """Every character of the raw text, ``\\n`` included (for any corpus of plain text)."""
    out: list[str] = []
    for line in lines:
        out.extend(line.lower() if lower else line)
        out.append("\n")
    return out


def ptb_char_tokens(lines: Iterable[str]) -> list[str]:
    """Tokens of a PTB char file (``a e r _ b a n k ...``: space-separated characters,
    ``_`` between words), ``<eos>`` after every line."""
    out: list[str] = []
    for line in lines:
        chars = line.split()
        if not chars:
            continue
        out.extend(chars)
        out.append(EOS)
    return out


def words_to_ptb_chars(lines: Iterable[str]) -> list[str]:
    """The char-level stream derived from a PTB word file: each word spelt out, ``_``
    between words, ``<eos>`` per line (the layout of Mikolov's ``ptb.char.*`` files)."""
    out: list[str] = []
    for line in lines:
        words = line.split()
        if not words:
            continue
        out.extend(PTB_SPACE.join(words))
        out.append(EOS)
    return out


@dataclass(frozen=True)
class Vocab:
    """Token <-> id maps. ``itos[i]`` is the token of id ``i``; unknown tokens map to
    ``unk`` (which must be in the vocabulary, or unknown tokens are an error)."""

    itos: tuple[str, ...]
    unk: str | None = UNK

    def __post_init__(self) -> None:
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("Vocab.itos has duplicate tokens")
        if self.unk is not None and self.unk not in self.itos:
            raise ValueError(f"Vocab.unk {self.unk!r} is not in the vocabulary")
        object.__setattr__(self, "stoi", {t: i for i, t in enumerate(self.itos)})

    @classmethod
    def build(cls, tokens: Iterable[str], *, max_size: int | None = None, min_freq: int = 1,
              specials: Sequence[str] = (UNK,), unk: str | None = UNK) -> "Vocab":
        """Specials first, then tokens by descending count (ties: first seen), keeping at most
        ``max_size`` entries in all and only tokens seen ``min_freq`` times or more."""
        if max_size is not None and max_size < len(specials) + 1:
            raise ValueError(f"max_size must exceed the {len(specials)} special tokens, got "
                             f"{max_size}")
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        counts = Counter(tokens)
        order = sorted((t for t in counts if t not in specials and counts[t] >= min_freq),
                       key=lambda t: -counts[t])  # stable: ties keep first-seen order
        itos = list(specials) + order
        if max_size is not None:
            itos = itos[:max_size]
        return cls(tuple(itos), unk if unk in itos else None)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi  # type: ignore[attr-defined]

    def index(self, token: str) -> int:
        stoi: dict[str, int] = self.stoi  # type: ignore[attr-defined]
        i = stoi.get(token)
        if i is None:
            if self.unk is None:
                raise KeyError(f"token {token!r} is not in the vocabulary (which has no unk)")
            return stoi[self.unk]
        return i

    def encode(self, tokens: Iterable[str]) -> torch.Tensor:
        return torch.tensor([self.index(t) for t in tokens], dtype=torch.long)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    def unknown_rate(self, tokens: Sequence[str]) -> float:
        stoi = self.stoi  # type: ignore[attr-defined]
        return sum(t not in stoi for t in tokens) / max(len(tokens), 1)
