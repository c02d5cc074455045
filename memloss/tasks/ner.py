"""CoNLL-2003 named entity recognition (Semeniuta et al. 2016, sec. 4.4).

Each step's input is a 5-word context window (the word, two before, two after): for every
window position the word's static vector (pretrained word2vec, or fixed random vectors)
and a one-hot capitalization feature, concatenated. Targets are the IOB2 tag of every word;
padding steps have weight 0. Training uses Ng et al.'s length expansion: chunks of
``train_length`` words (5 in the first stage, 15 in the second; ``length_schedule`` and
:meth:`ConllNER.at_epoch` give the stage of an epoch); validation and test use whole
sentences. Batches are right-padded and carry each sentence's length (``Batch.lengths``), so
padding changes no result, a bidirectional encoder (``NetConfig.bidirectional``) included.
The metric is entity-level F1 (seqeval's chunking, micro-averaged).
"""
from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar, Iterator

import torch
from torch import Tensor

from memloss.core import validate
from .base import SPLITS, TASKS, Batch, Task
from .data.batching import (check_batch_size, check_split, masked_cross_entropy, order, pad,
                            token_nll_sums)
from .data.conll import CONLL_FORMAT, Sentence, read_conll
from .data.errors import DataError
from .data.store import data_path
from .data.text import PAD, UNK
from .data.word2vec import read_word2vec

__all__ = ["ConllNER", "capitalization", "CAP_FEATURES", "PAPER_SCHEDULE", "NerData"]

#: capitalization classes (Collobert et al. 2011 style) plus a class for window padding
CAP_FEATURES = ("lower", "upper", "title", "mixed", "nocase", "pad")
#: the paper's length expansion: 25 epochs on 5-word sequences, then 10 on 15-word ones
PAPER_SCHEDULE = ((5, 25), (15, 10))
_FILES = {"train": ("eng.train", "train.txt"), "valid": ("eng.testa", "valid.txt", "dev.txt"),
          "test": ("eng.testb", "test.txt")}


def capitalization(word: str) -> int:
    """Index into :data:`CAP_FEATURES` of a word's capitalization."""
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return 4
    if all(c.islower() for c in letters):
        return 0
    if all(c.isupper() for c in letters):
        return 1
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return 2
    return 3


@dataclass(frozen=True)
class NerData:
    """Encoded sentences (word ids, capitalization ids, tag ids per split), the static
    vectors ``[V, D]`` (row 0 = padding, zeros) and the tag names."""

    words: tuple[str, ...]
    vectors: Tensor
    tags: tuple[str, ...]
    splits: dict
    pretrained: int


def _find_files(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        raise DataError(root, "CoNLL-2003 directory not found; place the files there (see "
                        "`memloss data path conll2003`) or pass --set task.root=DIR (root=DIR "
                        "from Python)",
                        "eng.train, eng.testa, eng.testb (or train.txt, valid.txt, test.txt)")
    out = {}
    for s in SPLITS:
        found = next((root / n for n in _FILES[s] if (root / n).is_file()), None)
        if found is None:
            raise DataError(root / _FILES[s][0], f"file not found (also tried "
                            f"{', '.join(_FILES[s][1:])})", CONLL_FORMAT)
        out[s] = found
    return out


@functools.lru_cache(maxsize=4)
def _load(stamp: tuple, vectors_path: str | None, embedding_dim: int, min_freq: int,
          seed: int) -> NerData:
    sents: dict[str, list[Sentence]] = {s: read_conll(p) for s, p, _ in stamp}
    train_counts = Counter(w.lower() for s in sents["train"] for w in s.words)
    types = sorted({t[2:] for s in sents["train"] for t in s.tags if t != "O"})
    tags = ("O",) + tuple(f"{p}-{ty}" for ty in types for p in ("B", "I"))
    for split, path, _ in stamp:
        unknown = {t[2:] for s in sents[split] for t in s.tags if t != "O"} - set(types)
        if unknown:
            raise DataError(path, f"entity types {sorted(unknown)} never occur in the training "
                            "file", CONLL_FORMAT)
    pre: dict[str, Tensor] = {}
    if vectors_path is not None:
        surface = {w for ss in sents.values() for s in ss for w in s.words}
        wanted = surface | {w.lower() for w in surface}
        names, mat = read_word2vec(vectors_path, keep=wanted)
        if not names:
            raise DataError(vectors_path, "none of the corpus' words has a vector", "word2vec "
                            "vectors for (some of) the CoNLL words")
        row = dict(zip(names, mat))
        # a lower-cased key takes the lower-case vector, else that of its most frequent form
        forms = Counter(w for ss in sents.values() for s in ss for w in s.words)
        for w, _ in forms.most_common():
            k = w.lower()
            if k not in pre:
                if k in row:
                    pre[k] = row[k]
                elif w in row:
                    pre[k] = row[w]
        embedding_dim = mat.shape[1]
    keys = sorted(set(pre) | {w for w, c in train_counts.items() if c >= min_freq})
    words = (PAD, UNK) + tuple(keys)
    g = torch.Generator().manual_seed(seed)
    vectors = torch.randn(len(words), embedding_dim, generator=g) / embedding_dim ** 0.5
    vectors[0] = 0.0
    for i, k in enumerate(words):
        if k in pre:
            vectors[i] = pre[k]
    index = {w: i for i, w in enumerate(words)}
    tag_index = {t: i for i, t in enumerate(tags)}
    encoded = {}
    for split, ss in sents.items():
        encoded[split] = [(torch.tensor([index.get(w.lower(), 1) for w in s.words]),
                           torch.tensor([capitalization(w) for w in s.words]),
                           torch.tensor([tag_index[t] for t in s.tags])) for s in ss]
    return NerData(words, vectors, tags, encoded, len(pre))


@TASKS.register("conll-ner", "CoNLL-2003 NER, 5-word context windows, entity-level F1")
@dataclass(frozen=True)
class ConllNER(Task):
    """CoNLL-2003 NER with context-window features.

    ``root``: directory of ``eng.train``/``eng.testa``/``eng.testb`` (default
    ``data_path("conll2003")``). ``vectors``: a word2vec text or binary file (static
    pretrained embeddings); without it words get fixed random vectors of ``embedding_dim``
    (from ``seed``). ``window``: context size (odd, 5 in the paper). ``train_length``:
    training chunk length in words (None: whole sentences); ``length_schedule``: pairs
    (length, epochs), the paper's ((5, 25), (15, 10)), applied by :meth:`at_epoch`.
    ``min_freq``: training words rarer than this (and without a pretrained vector) are unknown.
    """

    name: ClassVar[str] = "conll-ner"
    target: ClassVar[str] = "every"
    metric: ClassVar[str] = "f1"
    lower_is_better: ClassVar[bool] = False

    root: str | None = None
    vectors: str | None = None
    embedding_dim: int = 50
    window: int = 5
    train_length: int | None = 5
    length_schedule: tuple | None = PAPER_SCHEDULE
    min_freq: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.window, int) or self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"window must be a positive odd integer, got {self.window!r}")
        validate.integer(self.name, "embedding_dim", self.embedding_dim)
        validate.optional(validate.integer, self.name, "train_length", self.train_length)
        if self.length_schedule is not None:
            try:
                sched = tuple((None if n is None else int(n), int(e))
                              for n, e in self.length_schedule)
            except (TypeError, ValueError):
                raise ValueError("length_schedule must be pairs (length, epochs), e.g. "
                                 f"((5, 25), (15, 10)); got {self.length_schedule!r}") from None
            if not sched or any((n is not None and n < 1) or e < 1 for n, e in sched):
                raise ValueError(f"length_schedule needs lengths >= 1 and epochs >= 1, got "
                                 f"{self.length_schedule!r}")
            object.__setattr__(self, "length_schedule", sched)
        validate.integer(self.name, "min_freq", self.min_freq)

    # -- length expansion -----------------------------------------------------------------
    def length_at(self, epoch: int) -> int | None:
        """Training chunk length at ``epoch`` (0-based) under ``length_schedule`` (after the
        schedule's last stage its length stays); ``train_length`` without a schedule."""
        if self.length_schedule is None:
            return self.train_length
        end = 0
        for length, epochs in self.length_schedule:
            end += epochs
            if epoch < end:
                return length
        return self.length_schedule[-1][0]

    def at_epoch(self, epoch: int) -> "ConllNER":
        """This task with ``train_length`` set for ``epoch`` by the length schedule."""
        n = self.length_at(epoch)
        return self if n == self.train_length else replace(self, train_length=n)

    def schedule_epochs(self) -> int | None:
        """Total epochs of the length schedule (35 in the paper)."""
        return None if self.length_schedule is None else sum(e for _, e in self.length_schedule)

    # -- data -----------------------------------------------------------------------------
    @property
    def data(self) -> NerData:
        root = Path(self.root).expanduser() if self.root is not None else data_path("conll2003")
        files = _find_files(root)
        stamp = tuple((s, str(p), p.stat().st_mtime_ns) for s, p in files.items())
        vec = None if self.vectors is None else str(Path(self.vectors).expanduser())
        return _load(stamp, vec, self.embedding_dim, self.min_freq, self.seed)

    @property
    def feature_size(self) -> int:
        return self.data.vectors.shape[1] + len(CAP_FEATURES)

    @classmethod
    def tiny(cls, fixtures: Path) -> dict:
        return {"root": str(fixtures / "conll")}

    def net_kwargs(self) -> dict:
        d = self.data
        return {"input_size": self.window * (d.vectors.shape[1] + len(CAP_FEATURES)),
                "output_size": len(d.tags)}

    def run_info(self) -> dict:
        d = self.data
        root = Path(self.root).expanduser() if self.root is not None else data_path("conll2003")
        return {"data_root": str(root.resolve()), "tags": list(d.tags),
                "vocab_size": len(d.words), "pretrained_words": d.pretrained,
                "vector_dim": int(d.vectors.shape[1])}

    def features(self, ids: Tensor, caps: Tensor, data: NerData | None = None) -> Tensor:
        """Window features ``[n, window * (D + 6)]`` of one sentence's word and cap ids."""
        d = self.data if data is None else data
        h = self.window // 2
        ids_p = torch.cat([ids.new_zeros(h), ids, ids.new_zeros(h)])
        caps_p = torch.cat([caps.new_full((h,), 5), caps, caps.new_full((h,), 5)])
        per_word = torch.cat([d.vectors[ids_p],
                              torch.nn.functional.one_hot(caps_p, len(CAP_FEATURES)).float()], 1)
        n = len(ids)
        return torch.cat([per_word[k:k + n] for k in range(self.window)], 1)

    def _chunks(self, split: str, generator: torch.Generator | None) -> list[tuple[int, int, int]]:
        sents = self.data.splits[split]
        L = self.train_length if split == "train" else None
        out = []
        for i, (ids, _, _) in enumerate(sents):
            n = len(ids)
            if L is None or n <= L:
                out.append((i, 0, n))
                continue
            phase = int(torch.randint(L, (1,), generator=generator)) if generator is not None else 0
            cuts = [0] + list(range(phase or L, n, L)) + [n]
            out.extend((i, a, b) for a, b in zip(cuts, cuts[1:]) if b > a)
        return out

    def batches(self, split: str, batch_size: int, *, generator: torch.Generator | None = None
                ) -> Iterator[Batch]:
        check_split(split)
        check_batch_size(batch_size)
        data = self.data
        sents = data.splits[split]
        chunks = self._chunks(split, generator)
        idx = order(len(chunks), split == "train", generator)
        for k in range(0, len(idx), batch_size):
            xs, ys = [], []
            for j in idx[k:k + batch_size].tolist():
                i, a, b = chunks[j]
                ids, caps, tags = sents[i]
                xs.append(self.features(ids, caps, data)[a:b])  # context: the whole sentence
                ys.append(tags[a:b])
            x, y = pad(xs, 0.0), pad(ys, 0)
            w = pad([torch.ones(len(t)) for t in ys], 0.0)
            yield Batch(x, y, w, lengths=torch.tensor([len(t) for t in ys], dtype=torch.int64))

    # -- objective and metric -------------------------------------------------------------
    def loss(self, output: Tensor, batch: Batch) -> Tensor:
        return masked_cross_entropy(output, batch.targets, batch.weights)

    def score(self, probs: Tensor, batch: Batch) -> dict[str, float]:
        # seqeval imports scikit-learn and scipy: only a run that scores NER pays for them
        from seqeval.metrics.sequence_labeling import get_entities

        sums = token_nll_sums(probs, batch.targets, batch.weights)
        names = self.data.tags
        pred = probs.argmax(-1)
        lengths = (batch.weights.sum(1) if batch.weights is not None
                   else torch.full((len(pred),), pred.shape[1])).long().tolist()
        correct = n_pred = n_gold = 0
        for row, n in enumerate(lengths):
            gold = set(get_entities([names[t] for t in batch.targets[row, :n].tolist()]))
            guess = set(get_entities([names[t] for t in pred[row, :n].tolist()]))
            correct += len(gold & guess)
            n_pred += len(guess)
            n_gold += len(gold)
        sums.update(entities_correct=float(correct), entities_pred=float(n_pred),
                    entities_gold=float(n_gold))
        return sums

    def finalize(self, sums: dict[str, float]) -> dict[str, float]:
        count = sums.get("count", 0.0)
        if count <= 0:
            raise ValueError("no scored tokens: the split produced no batches")
        c, p, g = sums["entities_correct"], sums["entities_pred"], sums["entities_gold"]
        precision = c / p if p else 0.0
        recall = c / g if g else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"f1": f1, "precision": precision, "recall": recall,
                "accuracy": sums["correct"] / count, "loss": sums["nll"] / count}
