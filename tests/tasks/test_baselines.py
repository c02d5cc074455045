"""Trivial baselines: the add-one unigram model of a language model's training split and the
majority class of a classifier's, checked against direct counts."""
from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from memloss.tasks import make_task
from memloss.tasks.baselines import baseline, majority, unigram
from memloss.tasks.data.text import char_tokens, read_lines, word_tokens
from memloss.tasks.data.errors import DataError
from memloss.tasks.text import default_text_root
from tests.tasks.data.helpers import FIXTURES

TEXT = FIXTURES / "text"
REPO = Path(__file__).resolve().parents[2]


def _direct(train: list[str], scored: list[str], vocab: set[str], unk: str = "<unk>") -> float:
    """Mean NLL (nats) of the add-one unigram model, from token strings."""
    norm = [t if t in vocab else unk for t in train]
    counts = Counter(norm)
    n, v = len(norm), len(vocab)
    return -sum(math.log((counts[t if t in vocab else unk] + 1) / (n + v))
                for t in scored) / len(scored)


def test_word_unigram_is_the_add_one_model_of_the_training_counts():
    task = make_task("text-word", root=str(TEXT), max_vocab=30)
    vocab = set(task.vocab.itos)
    train = word_tokens(read_lines(TEXT / "train.txt"), lower=True, split_punct=True)
    test = word_tokens(read_lines(TEXT / "test.txt"), lower=True, split_punct=True)
    b = unigram(task, "test")
    assert b.value == pytest.approx(math.exp(_direct(train, test[1:], vocab)), rel=1e-9)
    assert (b.kind, b.metric, b.symbols, b.train_count, b.scored) == \
        ("unigram", "perplexity", 30, len(train), len(test) - 1)


def test_char_unigram_is_in_bits_per_character_and_follows_train_tokens():
    task = make_task("text-char", root=str(TEXT), train_tokens=500)
    train = char_tokens(read_lines(TEXT / "train.txt"))[:500]
    valid = char_tokens(read_lines(TEXT / "valid.txt"))
    b = unigram(task, "valid")
    assert b.metric == "bpc" and b.train_count == 500
    assert b.value == pytest.approx(_direct(train, valid[1:], set(task.vocab.itos)) / math.log(2),
                                    rel=1e-9)


def test_majority_class_scores_the_most_frequent_training_label():
    task = make_task("temporal-order", length="short", train_size=64, valid_size=50,
                     test_size=70, seed=3)
    train = [int(t) for b in task.batches("train", 1000) for t in b.targets]
    test = [int(t) for b in task.batches("test", 1000) for t in b.targets]
    label = Counter(train).most_common(1)[0][0]
    b = majority(task, "test")
    assert b.kind == "majority" and b.metric == "accuracy" and b.scored == 70
    assert b.value == pytest.approx(sum(t == label for t in test) / 70)
    assert baseline(task, "test") == b


def test_baseline_picks_the_unigram_for_a_language_model():
    task = make_task("text-word", root=str(TEXT))
    assert baseline(task, "valid").kind == "unigram"


@pytest.mark.parametrize("split", ["train", "dev"])
def test_baseline_on_a_wrong_split_is_one_clear_error(split):
    with pytest.raises(ValueError, match="scored on valid or test"):
        unigram(make_task("text-word", root=str(TEXT)), split)


def test_unigram_of_a_classifier_is_refused():
    with pytest.raises(ValueError, match="not a language model"):
        unigram(make_task("temporal-order"), "test")


def test_cli_prints_the_baseline_of_a_preset_with_task_settings():
    out = subprocess.run([sys.executable, "-m", "memloss", "data", "baseline", "text-word",
                          "--set", f"task.root={TEXT}", "--set", "task.max_vocab=30",
                          "--split", "test"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    expected = unigram(make_task("text-word", root=str(TEXT), max_vocab=30), "test")
    assert out.stdout.strip() == expected.describe()
    bad = subprocess.run([sys.executable, "-m", "memloss", "data", "baseline", "text-word",
                          "--set", f"task.root={TEXT}", "--set", "task.train_tokens=0"],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "train_tokens must be an integer >= 2" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
def test_shakespeare_unigram_figures_of_the_cpu_presets():
    """The figures issue 22 quotes: 122.7 test perplexity (2000 words), 4.800 bpc (85 symbols)."""
    try:
        SHAKESPEARE = default_text_root()
    except DataError:
        pytest.skip("no Shakespeare corpus (MEMLOSS_DATA=/work/shared/data in a worktree)")
    word = unigram(make_task("text-word", root=str(SHAKESPEARE), max_vocab=2000), "test")
    char = unigram(make_task("text-char", root=str(SHAKESPEARE)), "test")
    assert word.symbols == 2000 and round(word.value, 1) == 122.7
    assert char.symbols == 85 and round(char.value, 3) == 4.800
