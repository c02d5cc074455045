"""ptb-word, ptb-char, text-word, text-char on fixtures: both batching schemes, metrics."""
from __future__ import annotations

import math
import shutil

import pytest
import torch

from memloss.tasks import Batch, make_task
from memloss.tasks.data.errors import DataError
from memloss.tasks.data.text import EOS
from memloss.tasks.text import default_text_root
from tests.tasks.data.helpers import FIXTURES, check_steps

PTB = str(FIXTURES / "ptb")
TEXT = str(FIXTURES / "text")


def test_ptb_word_stream_batching():
    t = make_task("ptb-word", root=PTB, bptt=5)
    data = t.corpus["train"]
    v = t.vocab
    assert t.net_kwargs() == {"vocab_size": len(v), "output_size": len(v)}
    assert v.itos[0] == "<unk>" and EOS in v
    assert int((data == v.index(EOS)).sum()) == 18  # one <eos> per line of ptb.train.txt
    B = 4
    batches = list(t.batches("train", B))
    cols = (len(data) - 1) // B
    assert all(b.carry and b.weights is None for b in batches)
    assert [b.inputs.shape[1] for b in batches] == [5] * (cols // 5) + ([cols % 5] if cols % 5 else [])
    x = torch.cat([b.inputs for b in batches], 1)
    y = torch.cat([b.targets for b in batches], 1)
    # columns are contiguous pieces of the stream; targets are the next token everywhere
    assert torch.equal(x, data[: B * cols].view(B, cols))
    assert torch.equal(y, data[1: B * cols + 1].view(B, cols))
    # stream order does not depend on a generator (state is carried)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(next(t.batches("train", B, generator=g)).inputs, batches[0].inputs)


def test_slices_batching_is_shuffled_without_carry():
    t = make_task("ptb-word", root=PTB, batching="slices", bptt=6)
    data = t.corpus["train"]
    n = (len(data) - 1) // 6
    plain = list(t.batches("train", 4))
    assert sum(len(b.inputs) for b in plain) == n and not any(b.carry for b in plain)
    assert torch.equal(plain[0].inputs[1], data[6:12]) and torch.equal(plain[0].targets[1], data[7:13])
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    shuf = torch.cat([b.inputs for b in t.batches("train", 4, generator=g())])
    assert torch.equal(shuf, torch.cat([b.inputs for b in t.batches("train", 4, generator=g())]))
    assert not torch.equal(shuf, torch.cat([b.inputs for b in plain]))
    assert sorted(map(tuple, shuf.tolist())) == sorted(map(tuple, torch.cat([b.inputs for b in plain]).tolist()))
    valid = list(t.batches("valid", 4, generator=g()))  # evaluation order is fixed
    assert torch.equal(valid[0].inputs[0], t.corpus["valid"][:6])


def test_ptb_char_derived_from_words_and_from_char_files(tmp_path):
    t = make_task("ptb-char", root=PTB)
    assert (t.batching, t.bptt, t.metric) == ("slices", 100, "bpc")
    assert t.run_info()["tokenizer"] == "words-to-chars"
    first = t.vocab.decode(t.corpus["train"][:12])
    assert first == list("the_company_")
    for f in (FIXTURES / "ptb").iterdir():
        shutil.copy(f, tmp_path / f.name)
    for s in ("train", "valid", "test"):
        (tmp_path / f"ptb.char.{s}.txt").write_text("a b _ c\nc _ a\n")
    c = make_task("ptb-char", root=str(tmp_path), bptt=3)
    assert c.run_info()["tokenizer"] == "ptb-chars"
    assert c.vocab.decode(c.corpus["train"]) == ["a", "b", "_", "c", EOS, "c", "_", "a", EOS]
    assert make_task("ptb-char", root=str(tmp_path), char_source="words").run_info()["tokenizer"] \
        == "words-to-chars"


def test_text_word_options():
    t = make_task("text-word", root=TEXT, max_vocab=50)
    assert len(t.vocab) == 50 and t.vocab.itos[0] == "<unk>"
    full = make_task("text-word", root=TEXT, max_vocab=None)
    assert full.vocab.decode(full.corpus["train"][:7]) == \
        ["all's", "well", "that", "ends", "well", "<eos>", "by"]
    assert t.vocab.decode(t.corpus["train"][:2]) == ["<unk>", "well"]
    assert all(w == w.lower() for w in t.vocab.itos if w not in ("<unk>", "<eos>"))
    cased = make_task("text-word", root=TEXT, lower=False, split_punct=False, max_vocab=None)
    assert "ALL'S" in cased.vocab and len(cased.vocab) > len(t.vocab)
    assert make_task("text-word", root=TEXT, min_freq=3).vocab.itos[1:4] == \
        make_task("text-word", root=TEXT).vocab.itos[1:4]


def test_text_char_counts_every_character():
    t = make_task("text-char", root=TEXT, bptt=50)
    text = (FIXTURES / "text" / "train.txt").read_text()
    n = len(t.corpus["train"])
    assert n == len(text) + (0 if text.endswith("\n") else 1)
    assert "\n" in t.vocab and t.net_kwargs()["vocab_size"] == len(set(text) | {"\n"}) + 1


@pytest.mark.parametrize("name,kw", [("ptb-word", {"root": PTB, "bptt": 7}),
                                     ("ptb-char", {"root": PTB, "bptt": 20}),
                                     ("text-word", {"root": TEXT, "batching": "slices", "bptt": 10}),
                                     ("text-char", {"root": TEXT, "batching": "stream", "bptt": 20})])
def test_one_training_step_and_metric(name, kw):
    t = make_task(name, **kw)
    check_steps(t, next(t.batches("train", 4)))


def test_metrics_from_nll():
    t = make_task("ptb-word", root=PTB)
    V = len(t.vocab)
    targets = torch.tensor([[1, 2, 3]])
    probs = torch.full((1, 3, V), 1.0 / V)
    s = t.score(probs, Batch(targets, targets))
    assert s["count"] == 3 and math.isclose(s["nll"], 3 * math.log(V), rel_tol=1e-5)
    assert math.isclose(t.finalize(s)["perplexity"], V, rel_tol=1e-4)
    c = make_task("text-char", root=TEXT)
    m = c.finalize({"nll": 10 * math.log(4), "count": 10, "correct": 0})
    assert math.isclose(m["bpc"], 2.0) and c.lower_is_better and c.metric == "bpc"
    w = torch.tensor([[1.0, 0.0, 1.0]])
    assert t.score(probs, Batch(targets, targets, w))["count"] == 2
    with pytest.raises(ValueError, match="no scored tokens"):
        t.finalize({"nll": 0.0, "count": 0.0})


def test_loss_reductions():
    out = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(0))
    y = torch.randint(7, (2, 5), generator=torch.Generator().manual_seed(1))
    b = Batch(y, y)
    tok = make_task("ptb-word", root=PTB).loss(out, b)
    seq = make_task("ptb-word", root=PTB, loss_reduction="sequence").loss(out, b)
    assert torch.allclose(seq, tok * 5)
    assert torch.allclose(tok, torch.nn.functional.cross_entropy(out.reshape(10, 7), y.reshape(10)))


def test_bad_input():
    with pytest.raises(ValueError, match="unknown batching 'bptt'; valid: stream, slices"):
        make_task("ptb-word", root=PTB, batching="bptt")
    with pytest.raises(ValueError, match="bptt must be an integer >= 1"):
        make_task("text-word", root=TEXT, bptt=0)
    with pytest.raises(ValueError, match="unknown char_source"):
        make_task("ptb-char", root=PTB, char_source="bytes")
    valid = make_task("ptb-word", root=PTB).corpus["valid"]
    big = list(make_task("ptb-word", root=PTB).batches("valid", 1000))  # clamped to the tokens
    assert big[0].inputs.shape == (len(valid) - 1, 1)


def test_missing_and_empty_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLOSS_DATA", str(tmp_path / "nodata"))
    with pytest.raises(DataError, match=r"PTB directory not found; run `memloss data fetch ptb`"):
        make_task("ptb-word").net_kwargs()
    for s in ("train", "valid"):
        (tmp_path / f"{s}.txt").write_text("some words here\n")
    with pytest.raises(DataError, match=r"test.txt: file not found"):
        make_task("text-word", root=str(tmp_path)).net_kwargs()
    (tmp_path / "test.txt").write_text("\n\n")
    with pytest.raises(DataError, match=r"test.txt: file is empty \(expected a UTF-8 text file"):
        make_task("text-word", root=str(tmp_path)).net_kwargs()


def test_default_corpus_is_found_or_named(tmp_path, monkeypatch):
    try:
        root = default_text_root()
    except DataError as e:
        assert "pass --set task.root=DIR" in str(e)
    else:
        assert (root / "train.txt").is_file() and (root / "valid.txt").is_file()
