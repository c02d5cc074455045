"""Sentiment: SemEval Twitter classification (Semeniuta et al. 2016, sec. 4.5) and Pang &
Lee movie-review score regression (Gal & Ghahramani 2016, sec. 5.2).

Words are fed one by one (token ids, right-padded with ``<pad>``; ``Batch.lengths`` holds
each text's length, so the net stops at its last word and padding changes no result) and the
prediction is read at each text's last word (:meth:`Batch.last`).

- ``source="semeval"``: three classes (negative, neutral, positive); metric ``f1_pn``, the
  mean of the F1 scores of the positive and negative classes (the SemEval measure).
- ``source="pang-lee"``: consecutive segments of ``segment_length`` words of each review
  (T = 200 in Gal's setup), each with its review's rating in [0, 1] as target; a scalar head;
  squared-error loss; metric ``mse``. Reviews (not segments) are split into
  train/valid/test by ``split_seed``, so no review is in two splits.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from memloss.core import validate
from .base import SPLITS, TASKS, Batch, Task
from .data.batching import (check_batch_size, check_split, class_sums, order, pad)
from .data.errors import DataError
from .data.sentiment import LABELS, SEMEVAL_FORMAT, read_scale_data, read_semeval
from .data.store import data_path
from .data.text import PAD, UNK, Vocab, tokenize

__all__ = ["Sentiment", "SOURCES"]

SOURCES = ("semeval", "pang-lee")
_SEMEVAL_FILES = {"train": ("train.tsv", "train.txt"), "valid": ("valid.tsv", "dev.tsv", "dev.txt"),
                  "test": ("test.tsv", "test.txt")}


@dataclass(frozen=True)
class _Encoded:
    vocab: Vocab
    splits: dict  # split -> (list of LongTensor token ids, Tensor targets)


def _semeval_files(root: Path, test_file: str | None = None) -> dict[str, Path]:
    if not root.is_dir():
        raise DataError(root, "SemEval directory not found; place train.tsv, valid.tsv and "
                        "test.tsv there or pass --set task.root=DIR (root=DIR from Python)",
                        SEMEVAL_FORMAT)
    out = {}
    if test_file is not None:
        p = root / Path(test_file).expanduser()  # an absolute path stays as it is
        if not p.is_file():
            raise DataError(p, "test file not found", SEMEVAL_FORMAT)
        out["test"] = p
    for s in SPLITS:
        if s in out:
            continue
        found = next((root / n for n in _SEMEVAL_FILES[s] if (root / n).is_file()), None)
        if found is None:
            raise DataError(root / _SEMEVAL_FILES[s][0], "file not found (also tried "
                            f"{', '.join(_SEMEVAL_FILES[s][1:])})", SEMEVAL_FORMAT)
        out[s] = found
    return out


def _vocab(train_docs: list[list[str]], max_vocab: int | None, min_freq: int) -> Vocab:
    return Vocab.build((w for d in train_docs for w in d), max_size=max_vocab, min_freq=min_freq,
                       specials=(PAD, UNK))


@functools.lru_cache(maxsize=4)
def _load_semeval(stamp: tuple, lower: bool, max_vocab: int | None, min_freq: int) -> _Encoded:
    docs, labels = {}, {}
    for split, path, _ in stamp:
        ex = read_semeval(path)
        docs[split] = [tokenize(e.text, lower=lower, split_punct=True) or [UNK] for e in ex]
        labels[split] = torch.tensor([e.label for e in ex])
    vocab = _vocab(docs["train"], max_vocab, min_freq)
    return _Encoded(vocab, {s: ([vocab.encode(d) for d in docs[s]], labels[s]) for s in SPLITS})


@functools.lru_cache(maxsize=4)
def _load_pang_lee(root: str, stamp: tuple, lower: bool, max_vocab: int | None, min_freq: int,
                   segment_length: int, valid_fraction: float, test_fraction: float,
                   split_seed: int) -> _Encoded:
    reviews = read_scale_data(root)
    n = len(reviews)
    n_valid, n_test = int(round(n * valid_fraction)), int(round(n * test_fraction))
    if n - n_valid - n_test < 1 or (valid_fraction > 0 and n_valid < 1) or (
            test_fraction > 0 and n_test < 1):
        raise ValueError(f"{n} reviews cannot be split with valid_fraction={valid_fraction}, "
                         f"test_fraction={test_fraction}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed)).tolist()
    parts = {"valid": perm[:n_valid], "test": perm[n_valid:n_valid + n_test],
             "train": perm[n_valid + n_test:]}
    words = {s: [tokenize(reviews[i].text, lower=lower, split_punct=True) for i in idx]
             for s, idx in parts.items()}
    vocab = _vocab(words["train"], max_vocab, min_freq)
    out = {}
    for s, idx in parts.items():
        segs, ys = [], []
        for i, ws in zip(idx, words[s]):
            for a in range(0, len(ws), segment_length):
                segs.append(vocab.encode(ws[a:a + segment_length]))
                ys.append(reviews[i].score)
        out[s] = (segs, torch.tensor(ys, dtype=torch.float32))
    return _Encoded(vocab, out)


@TASKS.register("sentiment", "SemEval Twitter sentiment (3 classes) or Pang & Lee score regression")
@dataclass(frozen=True)
class Sentiment(Task):
    """Sentiment of a word sequence, read at its last step.

    ``source``: "semeval" (``root`` with train.tsv, valid.tsv or dev.tsv, test.tsv; default
    ``data_path("semeval")``) or "pang-lee" (``root`` with ``scaledata/``; default
    ``data_path("pang-lee")``). ``lower``, ``max_vocab`` (cap including ``<pad>`` and
    ``<unk>``), ``min_freq``: the vocabulary. ``segment_length``, ``valid_fraction``,
    ``test_fraction``, ``split_seed``: Pang & Lee only. ``test_file``: SemEval only, another
    test set in ``root`` (or a path), e.g. one of the yearly test sets of Semeniuta et al.'s
    Table 5 (Twitter13, LiveJournal14, SMS13, Sarcasm14, ...). ``metric``, ``lower_is_better`` and
    ``regression`` follow the source (read them from the instance).
    """

    name: ClassVar[str] = "sentiment"
    target: ClassVar[str] = "last"
    metric: ClassVar[str] = "f1_pn"
    lower_is_better: ClassVar[bool] = False
    regression: ClassVar[bool] = False

    source: str = "semeval"
    root: str | None = None
    lower: bool = True
    max_vocab: int | None = None
    min_freq: int = 1
    segment_length: int = 200
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0
    test_file: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; valid: {', '.join(SOURCES)}")
        validate.integer(self.name, "segment_length", self.segment_length)
        for f in ("valid_fraction", "test_fraction"):
            v = getattr(self, f)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{f} must be in [0, 1), got {v!r}")
        if self.valid_fraction + self.test_fraction >= 1.0:
            raise ValueError("valid_fraction + test_fraction must leave training reviews")
        validate.optional(validate.integer, self.name, "max_vocab", self.max_vocab, minimum=3)
        validate.integer(self.name, "min_freq", self.min_freq)
        if self.source == "pang-lee":  # the instance's metric, direction and head type
            object.__setattr__(self, "metric", "mse")
            object.__setattr__(self, "lower_is_better", True)
            object.__setattr__(self, "regression", True)

    @property
    def encoded(self) -> _Encoded:
        if self.source == "semeval":
            root = Path(self.root).expanduser() if self.root is not None else data_path("semeval")
            files = _semeval_files(root, self.test_file)
            stamp = tuple((s, str(files[s]), files[s].stat().st_mtime_ns) for s in SPLITS)
            return _load_semeval(stamp, self.lower, self.max_vocab, self.min_freq)
        root = Path(self.root).expanduser() if self.root is not None else data_path("pang-lee")
        base = root / "scaledata" if (root / "scaledata").is_dir() else root
        stamp = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in base.glob("*/*")
                             if p.is_file())) if base.is_dir() else ()
        return _load_pang_lee(str(root), stamp, self.lower, self.max_vocab, self.min_freq,
                              self.segment_length, self.valid_fraction, self.test_fraction,
                              self.split_seed)

    @property
    def vocab(self) -> Vocab:
        return self.encoded.vocab

    @classmethod
    def tiny(cls, fixtures: Path) -> dict:
        return {"source": "semeval", "root": str(fixtures / "semeval")}

    def net_kwargs(self) -> dict:
        return {"vocab_size": len(self.vocab), "output_size": 1 if self.regression else len(LABELS)}

    def run_info(self) -> dict:
        e = self.encoded
        root = Path(self.root).expanduser() if self.root is not None else data_path(self.source)
        return {"data_root": str(root.resolve()), "vocab_size": len(e.vocab),
                "examples": {s: len(e.splits[s][0]) for s in SPLITS}}

    def batches(self, split: str, batch_size: int, *, generator: torch.Generator | None = None
                ) -> Iterator[Batch]:
        check_split(split)
        check_batch_size(batch_size)
        seqs, targets = self.encoded.splits[split]
        if not seqs:
            raise ValueError(f"split {split!r} is empty")
        idx = order(len(seqs), split == "train", generator)
        for k in range(0, len(idx), batch_size):
            j = idx[k:k + batch_size]
            chosen = [seqs[i] for i in j.tolist()]
            yield Batch(pad(chosen, 0), targets[j],
                        lengths=torch.tensor([len(s) for s in chosen], dtype=torch.int64))

    def loss(self, output: Tensor, batch: Batch) -> Tensor:
        if self.regression:
            return F.mse_loss(batch.last(output)[:, 0], batch.targets)
        return F.cross_entropy(batch.last(output), batch.targets)

    def score(self, probs: Tensor, batch: Batch) -> dict[str, float]:
        if self.regression:
            err = batch.last(probs)[:, 0] - batch.targets
            return {"sq_error": float((err ** 2).sum()), "abs_error": float(err.abs().sum()),
                    "count": float(len(err))}
        last = batch.last(probs)
        sums = class_sums(last, batch.targets)
        pred = last.argmax(-1)
        for c, name in ((0, "neg"), (2, "pos")):
            p, t = pred == c, batch.targets == c
            sums[f"tp_{name}"] = float((p & t).sum())
            sums[f"fp_{name}"] = float((p & ~t).sum())
            sums[f"fn_{name}"] = float((~p & t).sum())
        return sums

    def finalize(self, sums: dict[str, float]) -> dict[str, float]:
        count = sums.get("count", 0.0)
        if count <= 0:
            raise ValueError("no scored examples: the split produced no batches")
        if self.regression:
            mse = sums["sq_error"] / count
            return {"mse": mse, "rmse": mse ** 0.5, "mae": sums["abs_error"] / count}
        out = {"accuracy": sums["correct"] / count, "loss": sums["nll"] / count}
        for name in ("neg", "pos"):
            tp, fp, fn = sums[f"tp_{name}"], sums[f"fp_{name}"], sums[f"fn_{name}"]
            out[f"f1_{name}"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        out["f1_pn"] = (out["f1_neg"] + out["f1_pos"]) / 2
        return out
