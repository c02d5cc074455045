"""conll-ner on the CoNLL fixtures: window features, length expansion, seqeval F1."""
from __future__ import annotations

import pytest
import torch
from seqeval.metrics import f1_score

from memloss.tasks import make_task
from memloss.tasks.data.errors import DataError
from memloss.tasks.ner import CAP_FEATURES, PAPER_SCHEDULE, capitalization
from tests.tasks.data.helpers import FIXTURES, check_steps

ROOT = str(FIXTURES / "conll")
VEC = str(FIXTURES / "vectors.txt")


def task(**kw):
    return make_task("conll-ner", root=ROOT, **kw)


def test_capitalization_classes():
    assert [CAP_FEATURES[capitalization(w)] for w in ("eu", "EU", "Paris", "McDonald", "1996", "iPod")] \
        == ["lower", "upper", "title", "mixed", "nocase", "mixed"]


def test_net_kwargs_and_tags():
    t = task(embedding_dim=6)
    assert t.net_kwargs() == {"input_size": 5 * (6 + 6), "output_size": 9}
    assert t.run_info()["tags"][0] == "O" and len(t.run_info()["tags"]) == 9
    assert task(vectors=VEC).net_kwargs()["input_size"] == 5 * (4 + 6)
    assert task(window=3, embedding_dim=6).net_kwargs()["input_size"] == 3 * 12


def test_window_features_hold_the_neighbours():
    t = task(vectors=VEC)
    d = t.data
    ids, caps, _ = d.splits["train"][0]  # EU rejects German call to boycott British lamb .
    f = t.features(ids, caps)
    D = d.vectors.shape[1] + len(CAP_FEATURES)
    assert f.shape == (len(ids), 5 * D)
    eu = d.words.index("eu")
    assert torch.allclose(f[0, 2 * D: 2 * D + 4], torch.tensor([-0.3, 0.3, -0.3, 0.3]))  # centre
    assert torch.equal(f[0, 2 * D + 4: 3 * D], torch.nn.functional.one_hot(torch.tensor(1), 6).float())
    assert torch.equal(f[0, :D], torch.cat([torch.zeros(4), torch.eye(6)[5]]))  # padding slot
    assert torch.equal(f[1, D:2 * D], f[0, 2 * D:3 * D])  # word 0 is word 1's left neighbour
    assert ids[0] == eu and d.pretrained == 6
    # "germany" has its own lower-case vector; "Germany" only maps onto it through lower-casing
    assert torch.allclose(d.vectors[d.words.index("germany")], torch.tensor([0.9, 0.1, -0.9, 0.4]))


def test_training_chunks_and_full_sentences():
    t = task(train_length=5)
    sents = t.data.splits["train"]
    g = torch.Generator().manual_seed(0)
    train = list(t.batches("train", 4, generator=g))
    assert all(b.inputs.shape[1] <= 5 for b in train)
    assert sum(float(b.weights.sum()) for b in train) == sum(len(s[0]) for s in sents)
    for b in train:  # padding has weight 0 and target 0 ("O")
        assert torch.all(b.targets[b.weights == 0] == 0)
    test = list(task().batches("test", 8))
    lengths = sorted(int(n) for b in test for n in b.weights.sum(1))
    assert lengths == sorted(len(s[0]) for s in t.data.splits["test"])
    assert max(b.inputs.shape[1] for b in task(train_length=None).batches("train", 2)) == \
        max(len(s[0]) for s in sents)


def test_length_expansion_schedule():
    t = task()
    assert t.length_schedule == PAPER_SCHEDULE and t.schedule_epochs() == 35
    assert [t.length_at(e) for e in (0, 24, 25, 34, 50)] == [5, 5, 15, 15, 15]
    assert t.at_epoch(30).train_length == 15 and t.at_epoch(0) is t
    u = task(length_schedule=[[3, 1], [None, 2]], train_length=3)
    assert u.length_schedule == ((3, 1), (None, 2)) and u.at_epoch(1).train_length is None
    assert task(length_schedule=None, train_length=7).at_epoch(99).train_length == 7
    with pytest.raises(ValueError, match="length_schedule must be pairs"):
        task(length_schedule=[5, 15])


def test_f1_matches_seqeval():
    t = task()
    names = t.data.tags
    g = torch.Generator().manual_seed(0)
    sums: dict[str, float] = {}
    gold, pred = [], []
    for b in t.batches("test", 2):
        logits = torch.randn(*b.targets.shape, len(names), generator=g)
        logits.scatter_add_(-1, b.targets.unsqueeze(-1), torch.full(b.targets.shape + (1,), 1.5))
        probs = logits.softmax(-1)
        for k, v in t.score(probs, b).items():
            sums[k] = sums.get(k, 0.0) + v
        for row, n in enumerate(b.weights.sum(1).long().tolist()):
            gold.append([names[i] for i in b.targets[row, :n].tolist()])
            pred.append([names[i] for i in probs[row, :n].argmax(-1).tolist()])
    m = t.finalize(sums)
    assert m["f1"] == pytest.approx(f1_score(gold, pred))
    assert 0 < m["f1"] < 1
    perfect = t.finalize(t.score(torch.nn.functional.one_hot(b.targets, len(names)).float(), b))
    assert perfect["f1"] == 1.0 and perfect["accuracy"] == 1.0


def test_one_training_step_and_metric():
    t = task(embedding_dim=8)
    m = check_steps(t, next(t.batches("train", 4, generator=torch.Generator().manual_seed(0))))
    assert {"f1", "precision", "recall", "accuracy", "loss"} <= set(m)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="window must be a positive odd integer"):
        task(window=4)
    with pytest.raises(DataError, match="CoNLL-2003 directory not found"):
        make_task("conll-ner", root=str(tmp_path / "none")).net_kwargs()
    (tmp_path / "eng.train").write_text((FIXTURES / "conll" / "eng.train").read_text())
    with pytest.raises(DataError, match=r"eng.testa: file not found \(also tried valid.txt, dev.txt\)"):
        make_task("conll-ner", root=str(tmp_path)).net_kwargs()
    (tmp_path / "eng.testa").write_text("Tokyo NNP B-NP I-GPE\n")
    (tmp_path / "eng.testb").write_text("Tokyo NNP B-NP I-LOC\n")
    with pytest.raises(DataError, match=r"eng.testa: entity types \['GPE'\] never occur"):
        make_task("conll-ner", root=str(tmp_path)).net_kwargs()
    (tmp_path / "eng.testa").write_text("Tokyo NNP B-NP I-LOC\nis VBZ O\n")
    with pytest.raises(DataError, match="eng.testa: line 2 has 3 columns, earlier lines 4"):
        make_task("conll-ner", root=str(tmp_path)).net_kwargs()
