"""Pretrained word vectors in word2vec's text or binary format.

Text: an optional header line ``V D``, then ``word x_1 ... x_D`` per line (GloVe files, which
have no header, read too). Binary: header ``V D\\n``, then per word its UTF-8 bytes, a space
and ``D`` little-endian float32 values (an optional newline follows each vector).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Collection

import numpy as np
import torch

from memloss.core.atomic import atomic_write

from .errors import DataError

__all__ = ["read_word2vec", "write_word2vec", "W2V_FORMAT"]

W2V_FORMAT = ("word2vec vectors: text ('V D' header, then 'word x1 .. xD' per line) or "
              "binary ('V D\\n' then 'word ' + D float32 per word)")


def _is_binary(p: Path) -> bool:
    """Binary if the first 8 KiB hold a control byte other than tab, CR or LF (float32
    data practically always does; text never does)."""
    with open(p, "rb") as f:
        sample = f.read(8192)
    return any(b < 0x20 and b not in (9, 10, 13) for b in sample)


def _check_finite(p: Path, vec: np.ndarray, where: str) -> None:
    """A vector holding NaN or inf (or a value beyond float32) would poison every sentence
    using its word: refuse the file, naming the entry."""
    if not np.isfinite(vec).all():
        raise DataError(p, f"{where} holds a value that is NaN or infinite (or beyond float32)",
                        W2V_FORMAT)


def _header(p: Path, line: bytes) -> tuple[int, int] | None:
    parts = line.split()
    if len(parts) == 2 and all(x.isdigit() for x in parts):
        v, d = int(parts[0]), int(parts[1])
        if v < 1 or d < 1:
            raise DataError(p, f"header says {v} words of dimension {d}", W2V_FORMAT)
        return v, d
    return None


def _read_text(p: Path, keep: Collection[str] | None, limit: int | None
               ) -> tuple[list[str], list[np.ndarray]]:
    words: list[str] = []
    vecs: list[np.ndarray] = []
    dim: int | None = None
    entries = 0
    with open(p, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if lineno == 1:
                h = _header(p, raw)
                if h is not None:
                    dim = h[1]
                    continue
            parts = raw.rstrip(b"\r\n").split(b" ")
            parts = [x for x in parts if x]
            if not parts:
                continue
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise DataError(p, f"line {lineno} has a word and no vector", W2V_FORMAT)
            if len(parts) != dim + 1:
                raise DataError(p, f"line {lineno} has {len(parts) - 1} values, expected {dim}",
                                W2V_FORMAT)
            word = parts[0].decode("utf-8", errors="replace")
            if keep is None or word in keep:
                try:
                    vec = np.array([float(x) for x in parts[1:]], dtype=np.float32)
                except ValueError:
                    raise DataError(p, f"line {lineno} has a value that is not a number",
                                    W2V_FORMAT) from None
                _check_finite(p, vec, f"line {lineno}")
                vecs.append(vec)
                words.append(word)
            entries += 1
            if limit is not None and entries >= limit:
                break
    return words, vecs


def _read_binary(p: Path, keep: Collection[str] | None, limit: int | None
                 ) -> tuple[list[str], list[np.ndarray]]:
    words: list[str] = []
    vecs: list[np.ndarray] = []
    size = p.stat().st_size
    with open(p, "rb") as f:
        h = _header(p, f.readline())
        if h is None:
            raise DataError(p, "binary file without a 'V D' header line", W2V_FORMAT)
        n, dim = h
        nbytes = 4 * dim
        for i in range(n if limit is None else min(n, limit)):
            chars = bytearray()
            while True:
                c = f.read(1)
                if not c:
                    raise DataError(p, f"truncated: header promises {n} words, file ends in "
                                    f"word {i + 1}", W2V_FORMAT)
                if c == b" ":
                    break
                if c != b"\n" or chars:  # a newline after the previous vector is skipped
                    chars += c
                if len(chars) > 10_000:
                    raise DataError(p, f"word {i + 1} is not space-terminated", W2V_FORMAT)
            word = chars.decode("utf-8", errors="replace")
            wanted = keep is None or word in keep
            if wanted or i == n - 1:
                raw = f.read(nbytes)
                got = len(raw)
            else:  # skip an unwanted vector without reading it (big files, small keep sets)
                start = f.tell()
                got = min(nbytes, max(0, size - start))
                f.seek(start + got)
            if got != nbytes:
                raise DataError(p, f"truncated: vector {i + 1} of {n} has {got} of "
                                f"{nbytes} bytes", W2V_FORMAT)
            if wanted:
                vec = np.frombuffer(raw, dtype="<f4").copy()
                _check_finite(p, vec, f"vector {i + 1}")
                words.append(word)
                vecs.append(vec)
    return words, vecs


def read_word2vec(path: "str | os.PathLike[str]", *, keep: Collection[str] | None = None,
                  limit: int | None = None, binary: bool | None = None
                  ) -> tuple[list[str], torch.Tensor]:
    """Words and their vectors ``[N, D]`` (float32) from a word2vec file.

    ``keep``: only these words (saves memory on big files); ``limit``: read only the first
    entries; ``binary``: the format (None: detect). The first occurrence of a word wins.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "file not found", W2V_FORMAT)
    if p.stat().st_size == 0:
        raise DataError(p, "file is empty", W2V_FORMAT)
    is_bin = _is_binary(p) if binary is None else binary
    words, vecs = (_read_binary if is_bin else _read_text)(p, keep, limit)
    if not words and keep is None:
        raise DataError(p, "no vectors", W2V_FORMAT)
    seen: dict[str, int] = {}
    for i, w in enumerate(words):
        seen.setdefault(w, i)
    idx = sorted(seen.values())
    dim = len(vecs[0]) if vecs else 0
    mat = torch.from_numpy(np.stack([vecs[i] for i in idx])) if idx else torch.zeros(0, dim)
    return [words[i] for i in idx], mat


def write_word2vec(path: "str | os.PathLike[str]", words: list[str], vectors: torch.Tensor, *,
                   binary: bool = False) -> Path:
    """Write vectors in word2vec text or binary format (atomically)."""
    v = vectors.detach().to(torch.float32).cpu().numpy()
    if v.ndim != 2 or v.shape[0] != len(words):
        raise ValueError(f"need one vector row per word, got {v.shape} for {len(words)} words")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(f"{v.shape[0]} {v.shape[1]}\n".encode())
            for w, row in zip(words, v):
                if binary:
                    f.write(w.encode() + b" " + row.astype("<f4").tobytes() + b"\n")
                else:
                    f.write((w + " " + " ".join(f"{x:.6g}" for x in row) + "\n").encode())

    return atomic_write(path, write)
