"""Language modelling on Penn Treebank and on any text corpus, word or character level.

Both batching schemes of the papers:

- ``batching="stream"`` (Zaremba et al. 2014; Semeniuta et al. 2016 word level): the split is
  one token stream cut into ``batch_size`` contiguous columns, read ``bptt`` steps at a
  time; each batch continues the previous one (``Batch.carry=True``).
- ``batching="slices"`` (Krueger et al. 2016; Semeniuta et al. char level): non-overlapping
  slices of ``bptt`` steps, shuffled for training, no state carried across batches.

Targets are the next token at every step. Metrics: perplexity (words) or bits per character,
both from the summed negative log-likelihood of every scored token.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

import torch
from torch import Tensor

from memloss.core import validate
from .base import SPLITS, TASKS, Batch, Task
from .data.batching import (check_batch_size, check_split, lm_metrics, masked_cross_entropy,
                            slice_batches, stream_batches, token_nll_sums)
from .data.errors import DataError
from .data.store import data_dir, data_path
from .data.text import (TEXT_FORMAT, UNK, Vocab, char_tokens, ptb_char_tokens, read_lines,
                        word_tokens, words_to_ptb_chars)

__all__ = ["Corpus", "PTBWord", "PTBChar", "TextWord", "TextChar", "default_text_root",
           "BATCHINGS", "REDUCTIONS"]

BATCHINGS = ("stream", "slices")
REDUCTIONS = ("token", "sequence")
_REPO = Path(__file__).resolve().parents[2]  # the repository (memloss/tasks/text.py)


@dataclass(frozen=True)
class Corpus:
    """A vocabulary and the encoded token stream of each split."""

    vocab: Vocab
    splits: dict

    def __getitem__(self, split: str) -> Tensor:
        return self.splits[split]


def default_text_root() -> Path:
    """The Shakespeare corpus: ``$MEMLOSS_DATA/shakespeare`` (``memloss data fetch
    shakespeare`` builds it there), else a ``shared/data/shakespeare`` folder that a
    development checkout has beside the repository or the working directory."""
    tried = [data_dir() / "shakespeare", _REPO.parent / "shared" / "data" / "shakespeare",
             Path.cwd().parent / "shared" / "data" / "shakespeare"]
    for r in tried:
        if (r / "train.txt").is_file():
            return r
    raise DataError(tried[0], "no text corpus (train.txt, valid.txt, test.txt) found; looked in "
                    + ", ".join(map(str, dict.fromkeys(tried)))
                    + "; run `memloss data fetch shakespeare`, or pass --set task.root=DIR "
                    "(root=DIR from Python)",
                    "a directory with train.txt, valid.txt and test.txt")


def _split_files(root: Path, patterns: tuple[str, ...]) -> dict[str, Path]:
    """The file of each split: the first of ``patterns`` (``{split}`` filled in) that exists."""
    if not root.is_dir():
        raise DataError(root, "corpus directory not found",
                        "a directory with " + ", ".join(patterns[0].format(split=s) for s in SPLITS))
    out = {}
    for s in SPLITS:
        names = [p.format(split=s) for p in patterns]
        found = next((root / n for n in names if (root / n).is_file()), None)
        if found is None:
            raise DataError(root / names[0], f"file not found (also tried {', '.join(names[1:])})"
                            if len(names) > 1 else "file not found", TEXT_FORMAT)
        out[s] = found
    return out


def _stamp(paths: dict[str, Path]) -> tuple:
    return tuple((s, str(p), p.stat().st_mtime_ns, p.stat().st_size) for s, p in paths.items())


@functools.lru_cache(maxsize=8)
def _corpus(kind: str, stamp: tuple, lower: bool, split_punct: bool, max_vocab: int | None,
            min_freq: int, train_tokens: int | None = None,
            valid_tokens: int | None = None) -> Corpus:
    tokens = {}
    for split, path, _, _ in stamp:
        lines = read_lines(path)
        if kind == "words":
            toks = word_tokens(lines, lower=lower, split_punct=split_punct)
        elif kind == "ptb-chars":
            toks = ptb_char_tokens(lines)
        elif kind == "words-to-chars":
            toks = words_to_ptb_chars(lines)
        else:
            toks = char_tokens(lines, lower=lower)
        if len(toks) < 2:
            raise DataError(path, f"only {len(toks)} token(s)", TEXT_FORMAT)
        keep = {"train": train_tokens, "valid": valid_tokens}.get(split)
        if keep is not None:
            if keep > len(toks):
                words = "training" if split == "train" else "validation"
                raise DataError(path, f"{split}_tokens={keep} exceeds the {len(toks)} tokens "
                                f"of the {words} split; give a smaller number or none",
                                TEXT_FORMAT)
            toks = toks[:keep]
        tokens[split] = toks
    vocab = Vocab.build(tokens["train"], max_size=max_vocab, min_freq=min_freq, specials=(UNK,))
    return Corpus(vocab, {s: vocab.encode(t) for s, t in tokens.items()})


@dataclass(frozen=True)
class _LanguageModel(Task):
    """Shared fields: ``root`` (corpus directory; None: the task's default), ``batching``
    ("stream" or "slices"), ``bptt`` (steps per segment or slice), ``loss_reduction``
    ("token": mean NLL per token; "sequence": summed over time, averaged over the batch, the
    scale Zaremba et al.'s learning rate 1 assumes), ``lower``, ``max_vocab`` (a cap that
    includes ``<unk>``; rarer words become ``<unk>``), ``min_freq``, ``train_tokens``
    (None: the whole training split; N: its first N tokens after tokenisation, a smaller
    training corpus: the vocabulary is built from them) and ``valid_tokens`` (None: the whole
    validation split; N: its first N tokens, a cheaper validation pass for early stopping).
    The test split is always whole."""

    target: ClassVar[str] = "every"
    lower_is_better: ClassVar[bool] = True
    unit: ClassVar[str] = "word"
    #: the folder of the sample corpus under the tests' fixtures (see :meth:`tiny`)
    fixture: ClassVar[str] = "text"

    root: str | None = None
    batching: str = "stream"
    bptt: int = 35
    loss_reduction: str = "token"
    lower: bool = False
    max_vocab: int | None = None
    min_freq: int = 1
    train_tokens: int | None = None
    valid_tokens: int | None = None

    @classmethod
    def tiny(cls, fixtures: Path) -> dict:
        return {"root": str(fixtures / cls.fixture), "bptt": 5 if cls.unit == "word" else 10}

    def __post_init__(self) -> None:
        if self.batching not in BATCHINGS:
            raise ValueError(f"unknown batching {self.batching!r}; valid: {', '.join(BATCHINGS)}")
        if self.loss_reduction not in REDUCTIONS:
            raise ValueError(f"unknown loss_reduction {self.loss_reduction!r}; valid: "
                             f"{', '.join(REDUCTIONS)}")
        validate.integer(self.name, "bptt", self.bptt)
        validate.optional(validate.integer, self.name, "max_vocab", self.max_vocab, minimum=2)
        validate.integer(self.name, "min_freq", self.min_freq)
        for name in ("train_tokens", "valid_tokens"):
            validate.optional(validate.integer, self.name, name, getattr(self, name), minimum=2)

    # -- data ---------------------------------------------------------------------------
    def _root(self) -> Path:
        raise NotImplementedError

    def _files(self) -> tuple[str, dict[str, Path]]:
        """(tokenizer kind, split -> file)."""
        raise NotImplementedError

    def _options(self) -> tuple[bool, bool]:
        return self.lower, False

    @property
    def corpus(self) -> Corpus:
        kind, files = self._files()
        lower, split_punct = self._options()
        return _corpus(kind, _stamp(files), lower, split_punct, self.max_vocab, self.min_freq,
                       self.train_tokens, self.valid_tokens)

    @property
    def vocab(self) -> Vocab:
        return self.corpus.vocab

    def net_kwargs(self) -> dict:
        n = len(self.vocab)
        return {"vocab_size": n, "output_size": n}

    def run_info(self) -> dict:
        c = self.corpus
        kind, files = self._files()
        return {"vocab_size": len(c.vocab), "tokenizer": kind,
                "data_root": str(self._root().resolve()),
                "files": {s: str(p) for s, p in files.items()},
                "tokens": {s: int(len(t)) for s, t in c.splits.items()}}

    def batches(self, split: str, batch_size: int, *, generator: torch.Generator | None = None
                ) -> Iterator[Batch]:
        check_split(split)
        check_batch_size(batch_size)
        data = self.corpus[split]
        if self.batching == "stream":
            return stream_batches(data, batch_size, self.bptt)
        return slice_batches(data, batch_size, self.bptt, shuffle=split == "train",
                             generator=generator)

    # -- objective and metric -------------------------------------------------------------
    def loss(self, output: Tensor, batch: Batch) -> Tensor:
        return masked_cross_entropy(output, batch.targets, batch.weights,
                                    reduction=self.loss_reduction)

    def score(self, probs: Tensor, batch: Batch) -> dict[str, float]:
        return token_nll_sums(probs, batch.targets, batch.weights)

    def finalize(self, sums: dict[str, float]) -> dict[str, float]:
        return lm_metrics(sums, self.unit)


_PTB_WORD_FILES = ("ptb.{split}.txt", "{split}.txt")
_PTB_CHAR_FILES = ("ptb.char.{split}.txt",)
CHAR_SOURCES = ("auto", "char-files", "words")


@TASKS.register("ptb-word", "Penn Treebank word-level language model (perplexity)")
@dataclass(frozen=True)
class PTBWord(_LanguageModel):
    """Word-level PTB (``ptb.{train,valid,test}.txt``; 10k words with ``<eos>`` per line).
    ``root`` defaults to ``data_path("ptb")`` (``memloss data fetch ptb``)."""

    name: ClassVar[str] = "ptb-word"
    metric: ClassVar[str] = "perplexity"
    unit: ClassVar[str] = "word"
    fixture: ClassVar[str] = "ptb"

    def _root(self) -> Path:
        return Path(self.root).expanduser() if self.root is not None else data_path("ptb")

    def _files(self) -> tuple[str, dict[str, Path]]:
        root = self._root()
        if not root.is_dir():
            raise DataError(root, "PTB directory not found; run `memloss data fetch ptb`, or "
                            "pass --set task.root=DIR to `memloss train` (root=DIR from "
                            "Python)", "ptb.train.txt, ptb.valid.txt, ptb.test.txt")
        return "words", _split_files(root, _PTB_WORD_FILES)


@TASKS.register("ptb-char", "Penn Treebank character-level language model (bits per char)")
@dataclass(frozen=True)
class PTBChar(PTBWord):
    """Character-level PTB: Mikolov's ``ptb.char.*.txt`` files when present
    (``char_source="auto"`` or "char-files"), else characters derived from the word files
    (``"words"``: each word spelt out, ``_`` between words, ``<eos>`` per line, the char
    files' layout)."""

    name: ClassVar[str] = "ptb-char"
    metric: ClassVar[str] = "bpc"
    unit: ClassVar[str] = "char"

    batching: str = "slices"
    bptt: int = 100
    char_source: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.char_source not in CHAR_SOURCES:
            raise ValueError(f"unknown char_source {self.char_source!r}; valid: "
                             f"{', '.join(CHAR_SOURCES)}")

    def _files(self) -> tuple[str, dict[str, Path]]:
        root = self._root()
        has_chars = all((root / f"ptb.char.{s}.txt").is_file() for s in SPLITS)
        if self.char_source == "char-files" or (self.char_source == "auto" and has_chars):
            return "ptb-chars", _split_files(root, _PTB_CHAR_FILES)
        return "words-to-chars", super()._files()[1]


@TASKS.register("text-word", "word-level language model on any train/valid/test text corpus")
@dataclass(frozen=True)
class TextWord(_LanguageModel):
    """Word-level LM on a directory of ``train.txt``, ``valid.txt``, ``test.txt`` (default:
    the Shakespeare corpus). Lines are lower-cased (``lower``), split into words and
    punctuation marks (``split_punct``), blank lines skipped, ``<eos>`` after each line; the
    vocabulary keeps the ``max_vocab`` most frequent training words."""

    name: ClassVar[str] = "text-word"
    metric: ClassVar[str] = "perplexity"
    unit: ClassVar[str] = "word"

    lower: bool = True
    max_vocab: int | None = 10000
    split_punct: bool = True

    def _root(self) -> Path:
        return Path(self.root).expanduser() if self.root is not None else default_text_root()

    def _options(self) -> tuple[bool, bool]:
        return self.lower, self.split_punct

    def _files(self) -> tuple[str, dict[str, Path]]:
        return "words", _split_files(self._root(), ("{split}.txt",))


@TASKS.register("text-char", "character-level language model on any text corpus (bits per char)")
@dataclass(frozen=True)
class TextChar(_LanguageModel):
    """Character-level LM on a text corpus directory: every character of the raw text,
    newlines included; characters unseen in training become ``<unk>``."""

    name: ClassVar[str] = "text-char"
    metric: ClassVar[str] = "bpc"
    unit: ClassVar[str] = "char"

    batching: str = "slices"
    bptt: int = 100

    def _root(self) -> Path:
        return Path(self.root).expanduser() if self.root is not None else default_text_root()

    def _files(self) -> tuple[str, dict[str, Path]]:
        return "chars", _split_files(self._root(), ("{split}.txt",))
