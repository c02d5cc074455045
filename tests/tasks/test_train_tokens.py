"""``train_tokens`` / ``valid_tokens``: a language model trained on the first N tokens of its
training split, validated on the first M of its validation split."""
from __future__ import annotations

import pytest
import torch

from memloss.tasks import make_task
from memloss.tasks.data.errors import DataError
from memloss.tasks.data.text import Vocab, read_lines, word_tokens
from tests.tasks.data.helpers import FIXTURES

TEXT = FIXTURES / "text"


@pytest.mark.parametrize("name", ["text-word", "text-char"])
def test_train_tokens_keeps_the_first_tokens_and_builds_the_vocabulary_from_them(name):
    full = make_task(name, root=str(TEXT))
    part = make_task(name, root=str(TEXT), train_tokens=60)
    assert len(part.corpus["train"]) == 60
    # the same tokens as the start of the full split, in the slice's own vocabulary
    assert part.vocab.decode(part.corpus["train"]) == full.vocab.decode(full.corpus["train"][:60])
    assert len(part.vocab) < len(full.vocab)
    # validation and test keep every token
    for split in ("valid", "test"):
        assert len(part.corpus[split]) == len(full.corpus[split])


def test_train_tokens_vocabulary_is_the_slices():
    tokens = word_tokens(read_lines(TEXT / "train.txt"), lower=True, split_punct=True)[:40]
    task = make_task("text-word", root=str(TEXT), train_tokens=40, max_vocab=None)
    assert task.vocab.itos == Vocab.build(tokens).itos
    assert torch.equal(task.corpus["train"], task.vocab.encode(tokens))


def test_train_tokens_beyond_the_split_is_one_clear_error():
    with pytest.raises(DataError, match="train_tokens=100000 exceeds the .* tokens of the "
                                        "training split"):
        make_task("text-word", root=str(TEXT), train_tokens=100_000).corpus


@pytest.mark.parametrize("bad", [0, 1, -5, 2.5, True])
def test_train_tokens_must_be_a_count(bad):
    with pytest.raises(ValueError, match="train_tokens must be an integer >= 2"):
        make_task("text-char", root=str(TEXT), train_tokens=bad)


def test_valid_tokens_keeps_the_first_validation_tokens_in_the_training_vocabulary():
    full = make_task("text-word", root=str(TEXT))
    part = make_task("text-word", root=str(TEXT), valid_tokens=30)
    assert len(part.corpus["valid"]) == 30
    assert torch.equal(part.corpus["valid"], full.corpus["valid"][:30])
    assert part.vocab.itos == full.vocab.itos  # the vocabulary is the training split's
    for split in ("train", "test"):
        assert torch.equal(part.corpus[split], full.corpus[split])


def test_valid_tokens_beyond_the_split_is_one_clear_error():
    with pytest.raises(DataError, match="valid_tokens=100000 exceeds the .* tokens of the "
                                        "validation split"):
        make_task("text-char", root=str(TEXT), valid_tokens=100_000).corpus
    with pytest.raises(ValueError, match="valid_tokens must be an integer >= 2"):
        make_task("text-char", root=str(TEXT), valid_tokens=1)
