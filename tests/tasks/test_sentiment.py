"""sentiment on SemEval and Pang & Lee fixtures: batches, F1 of pos/neg, MSE regression."""
from __future__ import annotations

import pytest
import torch

from memloss.tasks import Batch, make_task
from memloss.tasks.data.errors import DataError
from tests.tasks.data.helpers import FIXTURES, check_steps

SEMEVAL = str(FIXTURES / "semeval")
PANG_LEE = str(FIXTURES / "pang-lee")


def pl(**kw):
    kw = {"segment_length": 5, "valid_fraction": 0.2, "test_fraction": 0.2, **kw}
    return make_task("sentiment", source="pang-lee", root=PANG_LEE, **kw)


def test_semeval_batches_right_padded_with_lengths():
    t = make_task("sentiment", root=SEMEVAL)
    assert (t.metric, t.lower_is_better, t.regression) == ("f1_pn", False, False)
    assert t.net_kwargs() == {"vocab_size": len(t.vocab), "output_size": 3}
    assert t.vocab.itos[:2] == ("<pad>", "<unk>")
    bs = list(t.batches("train", 4))
    assert sum(len(b.targets) for b in bs) == 11 and bs[0].inputs.dtype == torch.int64
    for b in bs:
        assert b.lengths.dtype == torch.int64 and int(b.lengths.max()) == b.inputs.shape[1]
        for row, n in zip(b.inputs, b.lengths.tolist()):  # real words, then <pad>
            assert torch.all(row[:n] != 0) and torch.all(row[n:] == 0)
        assert b.targets.shape == (len(b.inputs),) and not b.carry
    assert sum(len(b.targets) for b in t.batches("valid", 8)) == 3  # dev.tsv is the validation file
    assert t.run_info()["examples"] == {"train": 11, "valid": 3, "test": 4}


def test_other_test_file():
    t = make_task("sentiment", root=SEMEVAL, test_file="dev.tsv")
    assert sum(len(b.targets) for b in t.batches("test", 8)) == 3
    with pytest.raises(DataError, match="sms2013.tsv: test file not found"):
        make_task("sentiment", root=SEMEVAL, test_file="sms2013.tsv").net_kwargs()


def test_f1_pn_is_the_mean_of_positive_and_negative_f1():
    t = make_task("sentiment", root=SEMEVAL)
    y = torch.tensor([0, 0, 1, 2, 2, 2])
    pred = torch.tensor([0, 1, 1, 2, 2, 0])
    probs = torch.nn.functional.one_hot(pred, 3).float().unsqueeze(1)
    m = t.finalize(t.score(probs, Batch(torch.zeros(6, 1, dtype=torch.long), y)))
    f1_neg = 2 * 1 / (2 * 1 + 1 + 1)  # tp 1, fp 1, fn 1
    f1_pos = 2 * 2 / (2 * 2 + 0 + 1)  # tp 2, fp 0, fn 1
    assert m["f1_neg"] == pytest.approx(f1_neg) and m["f1_pos"] == pytest.approx(f1_pos)
    assert m["f1_pn"] == pytest.approx((f1_neg + f1_pos) / 2)
    assert m["accuracy"] == pytest.approx(4 / 6)


def test_pang_lee_segments_and_splits():
    t = pl()
    assert (t.metric, t.lower_is_better, t.regression) == ("mse", True, True)
    assert t.net_kwargs()["output_size"] == 1
    segs = {s: list(t.batches(s, 64)) for s in ("train", "valid", "test")}
    for bs in segs.values():
        for b in bs:
            assert b.inputs.shape[1] <= 5 and b.targets.dtype == torch.float32
            assert torch.all((0 <= b.targets) & (b.targets <= 1))
    # 10 reviews: 2 valid, 2 test, 6 train, split by review (not by segment)
    whole = pl(segment_length=1000)  # one segment per review
    counts = {s: sum(len(b.targets) for b in whole.batches(s, 64)) for s in ("train", "valid", "test")}
    assert counts == {"train": 6, "valid": 2, "test": 2}
    # every segment of a review lands in the review's split: segment counts add up per split
    words = {s: sum(int((b.inputs != 0).sum()) for b in whole.batches(s, 64)) for s in counts}
    assert {s: sum(int((b.inputs != 0).sum()) for b in t.batches(s, 64)) for s in counts} == words
    other = pl(split_seed=1, segment_length=1000)
    assert torch.cat([b.targets for b in other.batches("valid", 64)]).tolist() != \
        torch.cat([b.targets for b in whole.batches("valid", 64)]).tolist()


def test_pang_lee_metric():
    t = pl()
    out = torch.tensor([[[0.5]], [[0.0]]])
    m = t.finalize(t.score(out, Batch(torch.zeros(2, 1, dtype=torch.long), torch.tensor([1.0, 0.5]))))
    assert m["mse"] == pytest.approx((0.25 + 0.25) / 2) and m["mae"] == pytest.approx(0.5)


@pytest.mark.parametrize("source", ["semeval", "pang-lee"])
def test_one_training_step_and_metric(source):
    t = make_task("sentiment", root=SEMEVAL) if source == "semeval" else pl()
    check_steps(t, next(t.batches("train", 6)))


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unknown source 'imdb'; valid: semeval, pang-lee"):
        make_task("sentiment", source="imdb")
    with pytest.raises(ValueError, match="valid_fraction must be in"):
        pl(valid_fraction=1.5)
    with pytest.raises(DataError, match="SemEval directory not found"):
        make_task("sentiment", root=str(tmp_path / "none")).net_kwargs()
    (tmp_path / "train.tsv").write_text("1\tpositive\tgood\n")
    with pytest.raises(DataError, match=r"valid.tsv: file not found \(also tried dev.tsv, dev.txt\)"):
        make_task("sentiment", root=str(tmp_path)).net_kwargs()
    with pytest.raises(DataError, match="no <Author>/subj.<Author> files"):
        make_task("sentiment", source="pang-lee", root=str(tmp_path)).net_kwargs()
