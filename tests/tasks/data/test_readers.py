"""Text, CoNLL, SemEval, Pang & Lee and word2vec readers: fixtures in the real formats, and a
clear DataError for missing, empty and malformed files."""
from __future__ import annotations

import pytest
import torch
from seqeval.metrics.sequence_labeling import get_entities

from memloss.tasks.data.conll import iob1_to_iob2, read_conll
from memloss.tasks.data.errors import DataError
from memloss.tasks.data.sentiment import read_scale_data, read_semeval
from memloss.tasks.data.text import (EOS, UNK, Vocab, char_tokens, ptb_char_tokens, read_lines,
                             tokenize, word_tokens, words_to_ptb_chars)
from memloss.tasks.data.word2vec import read_word2vec, write_word2vec
from tests.tasks.data.helpers import FIXTURES


# -- text --------------------------------------------------------------------------------
def test_ptb_words_get_eos_per_line():
    lines = read_lines(FIXTURES / "ptb" / "ptb.valid.txt")
    toks = word_tokens(lines)
    assert toks.count(EOS) == len(lines) == 4
    assert toks[:3] == ["the", "company", "said"] and toks[toks.index(EOS) - 1] == "quarter"


def test_char_streams():
    assert words_to_ptb_chars([" a bc ", "", "d"]) == ["a", "_", "b", "c", EOS, "d", EOS]
    assert ptb_char_tokens(["a _ b c", "d"]) == ["a", "_", "b", "c", EOS, "d", EOS]
    assert char_tokens(["Ab", ""], lower=True) == ["a", "b", "\n", "\n"]


def test_tokenize_options():
    assert tokenize("Thou art, O Lord!", lower=True, split_punct=True) == \
        ["thou", "art", ",", "o", "lord", "!"]
    assert tokenize("don't stop-go", split_punct=True) == ["don't", "stop-go"]
    assert tokenize("Thou art,") == ["Thou", "art,"]


def test_vocab_cap_unk_and_order():
    v = Vocab.build("a b b c c c d".split(), max_size=3)
    assert v.itos == (UNK, "c", "b") and len(v) == 3
    assert v.encode(["c", "a", "zzz"]).tolist() == [1, 0, 0]
    assert v.decode([2, 1]) == ["b", "c"]
    assert Vocab.build("x y y".split(), min_freq=2).itos == (UNK, "y")
    with pytest.raises(ValueError, match="max_size must exceed"):
        Vocab.build(["a"], max_size=1)
    with pytest.raises(KeyError, match="no unk"):
        Vocab(("a",), unk=None).index("b")


@pytest.mark.parametrize("content,problem", [(None, "file not found"), (b"", "file is empty"),
                                             (b"  \n\n", "file is empty"),
                                             (b"\xff\xfe bad", "not utf-8 text")])
def test_read_lines_errors(tmp_path, content, problem):
    p = tmp_path / "corpus.txt"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(DataError, match=f"corpus.txt: {problem}.*expected a UTF-8 text file"):
        read_lines(p)


# -- CoNLL -------------------------------------------------------------------------------
def test_conll_fixture():
    sents = read_conll(FIXTURES / "conll" / "eng.train")
    assert len(sents) == 6  # -DOCSTART- lines dropped, blank lines split sentences
    s = sents[0]
    assert s.words[:3] == ("EU", "rejects", "German")
    assert s.tags[:3] == ("B-ORG", "O", "B-MISC")  # IOB1 -> IOB2
    assert get_entities(list(sents[3].tags)) == [("ORG", 1, 2), ("MISC", 9, 9)]


def test_iob1_to_iob2():
    assert iob1_to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]) == \
        ("B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG")
    iob2 = ("B-PER", "I-PER", "O", "B-LOC")
    assert iob1_to_iob2(iob2) == iob2


@pytest.mark.parametrize("text,problem", [
    ("EU NNP B-NP I-ORG\nrejects VBZ B-VP\n", "line 2 has 3 columns, earlier lines 4"),
    ("EU NNP B-NP X-ORG\n", "line 1: 'X-ORG' is not an IOB tag"),
    ("-DOCSTART- -X- -X- O\n\n", "no sentences"),
    ("word\n", "line 1 has one column"),
    ("", "file is empty"),
])
def test_conll_errors(tmp_path, text, problem):
    p = tmp_path / "eng.train"
    p.write_text(text)
    with pytest.raises(DataError, match=f"eng.train: {problem}.*expected CoNLL-2003 columns"):
        read_conll(p)


# -- SemEval and Pang & Lee ----------------------------------------------------------------
def test_semeval_layouts():
    train = read_semeval(FIXTURES / "semeval" / "train.tsv")
    assert len(train) == 11  # the 'Not Available' row is skipped
    assert train[0].label == 2 and train[0].text.startswith("Gas by my house")
    test = read_semeval(FIXTURES / "semeval" / "test.tsv")  # quoted 4-column layout
    assert [e.label for e in test] == [2, 0, 1, 1] and test[0].text == "Happy birthday to the best friend ever"


@pytest.mark.parametrize("text,problem", [
    ("123\tpositive\tNot Available\n", "no labelled tweets"),
    ("123\tgreat\tsome tweet\n", "line 1: unknown label 'great'"),
    ("just text without tabs\n", "line 1 has no tab-separated label"),
])
def test_semeval_errors(tmp_path, text, problem):
    p = tmp_path / "train.tsv"
    p.write_text(text)
    with pytest.raises(DataError, match=f"train.tsv: {problem}.*expected SemEval Twitter TSV"):
        read_semeval(p)


def test_scale_data_fixture():
    reviews = read_scale_data(FIXTURES / "pang-lee")
    assert len(reviews) == 10 and [r.author for r in reviews[:5]] == ["Alice"] * 5
    assert reviews[0].score == 0.9 and reviews[5].text.startswith("a clever script")


def test_scale_data_errors(tmp_path):
    with pytest.raises(DataError, match="directory not found"):
        read_scale_data(tmp_path / "none")
    (tmp_path / "scaledata" / "Eve").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no <Author>/subj.<Author> files"):
        read_scale_data(tmp_path)
    d = tmp_path / "scaledata" / "Eve"
    (d / "subj.Eve").write_text("good film\nbad film\n")
    with pytest.raises(DataError, match="rating.Eve: file not found"):
        read_scale_data(tmp_path)
    (d / "rating.Eve").write_text("0.5\n")
    with pytest.raises(DataError, match="1 ratings for 2 reviews"):
        read_scale_data(tmp_path)
    (d / "rating.Eve").write_text("0.5\nten\n")
    with pytest.raises(DataError, match="line 2: 'ten' is not a number"):
        read_scale_data(tmp_path)
    (d / "rating.Eve").write_text("0.5\n3\n")
    with pytest.raises(DataError, match=r"rating 3.0 outside \[0, 1\]"):
        read_scale_data(tmp_path)


# -- word2vec ------------------------------------------------------------------------------
def test_word2vec_text_fixture():
    words, vecs = read_word2vec(FIXTURES / "vectors.txt")
    assert words[:3] == ["the", "company", "Germany"] and vecs.shape == (8, 4)
    assert torch.allclose(vecs[2], torch.tensor([1.0, 0.0, -1.0, 0.5]))
    kept, kv = read_word2vec(FIXTURES / "vectors.txt", keep={"Paris", "nope"})
    assert kept == ["Paris"] and kv.shape == (1, 4)


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_round_trip(tmp_path, binary):
    words = ["a", "Zürich", "c"]
    vecs = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    p = write_word2vec(tmp_path / "v.bin", words, vecs, binary=binary)
    got_w, got_v = read_word2vec(p)
    assert got_w == words and torch.allclose(got_v, vecs, atol=1e-5)
    assert read_word2vec(p, limit=2)[0] == words[:2]
    kept, kv = read_word2vec(p, keep={"c"})
    assert kept == ["c"] and torch.allclose(kv[0], vecs[2], atol=1e-5)


def test_word2vec_headerless_glove_style(tmp_path):
    p = tmp_path / "glove.txt"
    p.write_text("the 0.1 0.2\nof 0.3 0.4\n")
    words, vecs = read_word2vec(p)
    assert words == ["the", "of"] and vecs.shape == (2, 2)


def test_word2vec_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_word2vec(tmp_path / "none.bin")
    p = tmp_path / "v.txt"
    p.write_text("")
    with pytest.raises(DataError, match="file is empty"):
        read_word2vec(p)
    p.write_text("2 3\nthe 0.1 0.2 0.3\nof 0.1 0.2\n")
    with pytest.raises(DataError, match="line 3 has 2 values, expected 3"):
        read_word2vec(p)
    p.write_text("2 3\nthe 0.1 0.2 x\n")
    with pytest.raises(DataError, match="not a number"):
        read_word2vec(p)
    b = write_word2vec(tmp_path / "v.bin", ["a", "b"], torch.ones(2, 4) * 0.5, binary=True)
    raw = b.read_bytes()
    b.write_bytes(raw[:-10])
    with pytest.raises(DataError, match=r"truncated: vector 2 of 2 has 7 of 16 bytes"):
        read_word2vec(b)
    b.write_bytes(raw[:12])  # cut inside the first vector, which keep= skips
    with pytest.raises(DataError, match=r"truncated: vector 1 of 2 has 6 of 16 bytes"):
        read_word2vec(b, keep={"b"})
