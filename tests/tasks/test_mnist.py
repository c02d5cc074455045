"""seq-mnist / permuted-mnist on the committed IDX fixtures."""
from __future__ import annotations

import shutil

import pytest
import torch

from memloss.tasks import make_task
from memloss.tasks.data.errors import DataError
from memloss.tasks.mnist import PIXELS, mnist_root
from tests.tasks.data.helpers import FIXTURES, check_steps

ROOT = str(FIXTURES / "mnist")


def task(name="seq-mnist", **kw):
    return make_task(name, root=ROOT, valid_size=4, **kw)


def test_shapes_and_splits():
    t = task()
    assert t.net_kwargs() == {"input_size": 1, "output_size": 10}
    sizes = {s: sum(len(b.targets) for b in t.batches(s, 8)) for s in ("train", "valid", "test")}
    assert sizes == {"train": 20, "valid": 4, "test": 10}
    b = next(t.batches("train", 8))
    assert b.inputs.shape == (8, 784, 1) and b.inputs.dtype == torch.float32
    assert b.targets.shape == (8,) and b.targets.dtype == torch.int64 and not b.carry
    assert 0.0 <= float(b.inputs.min()) and float(b.inputs.max()) <= 1.0
    assert t.permutation is None and t.run_info()["permutation"] is None


def test_valid_is_carved_from_train_by_seed():
    def labels_and_pixels(t, split):
        return [(int(y), float(x.sum())) for b in t.batches(split, 32) for x, y in zip(b.inputs, b.targets)]
    t = task()
    train, valid = labels_and_pixels(t, "train"), labels_and_pixels(t, "valid")
    assert not set(valid) & set(train)
    assert labels_and_pixels(task(split_seed=1), "valid") != valid
    assert labels_and_pixels(task(), "valid") == valid


def test_pixels_per_step_and_limit():
    t = task(pixels_per_step=28, limit=3)
    b = next(t.batches("test", 8))
    assert b.inputs.shape == (3, 28, 28)
    # raster order: step i holds image row i
    x = next(task().batches("test", 3)).inputs
    assert torch.equal(b.inputs, x.reshape(3, 28, 28))


def test_train_size_keeps_the_first_training_images_only():
    def images(t, split):
        return torch.cat([b.inputs for b in t.batches(split, 32)])
    small = task(train_size=6)
    full = task()
    assert torch.equal(images(small, "train"), images(full, "train")[:6])
    # validation and test are untouched
    assert torch.equal(images(small, "valid"), images(full, "valid"))
    assert torch.equal(images(small, "test"), images(full, "test"))
    with pytest.raises(ValueError, match="train_size 21 is more than the 20 training images"):
        next(task(train_size=21).batches("train", 4))
    with pytest.raises(ValueError, match="train_size"):
        task(train_size=0)


def test_train_order_shuffled_by_generator_only():
    t = task()
    plain = [b.targets for b in t.batches("train", 20)][0]
    assert torch.equal(plain, [b.targets for b in t.batches("train", 20)][0])
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    a = next(t.batches("train", 20, generator=g(0))).targets
    assert torch.equal(a, next(t.batches("train", 20, generator=g(0))).targets)
    assert sorted(a.tolist()) == sorted(plain.tolist())


def test_permutation_is_a_true_permutation_from_the_seed():
    t = task("permuted-mnist", perm_seed=3)
    p = t.permutation
    assert torch.equal(torch.sort(p).values, torch.arange(PIXELS))
    assert torch.equal(p, task("permuted-mnist", perm_seed=3).permutation)
    assert not torch.equal(p, task("permuted-mnist", perm_seed=4).permutation)
    assert t.run_info()["permutation"] == p.tolist()
    seq = next(task().batches("test", 4)).inputs[:, :, 0]
    perm = next(t.batches("test", 4)).inputs[:, :, 0]
    assert torch.equal(perm, seq[:, p])


def test_one_training_step_and_metric():
    t = task("permuted-mnist", pixels_per_step=16)
    m = check_steps(t, next(t.batches("train", 8)))
    assert set(m) >= {"accuracy", "error", "loss"} and abs(m["accuracy"] + m["error"] - 1) < 1e-9


def test_bad_parameters():
    with pytest.raises(ValueError, match="pixels_per_step must divide 784"):
        task(pixels_per_step=5)
    with pytest.raises(ValueError, match="unknown source 'kmnist'; valid: fashion-mnist, mnist"):
        make_task("seq-mnist", source="kmnist")
    with pytest.raises(ValueError, match="leaves no training images"):
        next(make_task("seq-mnist", root=ROOT, valid_size=24).batches("train", 4))
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        next(task().batches("dev", 4))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        next(task().batches("train", 0))


def test_missing_data_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLOSS_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"no mnist IDX files .*memloss data fetch mnist"):
        mnist_root("mnist")
    with pytest.raises(DataError, match="no mnist IDX files"):
        next(make_task("seq-mnist", source="mnist").batches("train", 4))


def test_corrupt_labels_file(tmp_path):
    for f in (FIXTURES / "mnist").iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: corrupt or truncated gzip"):
        next(make_task("seq-mnist", root=str(tmp_path), valid_size=4).batches("train", 4))
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: file not found"):
        next(make_task("seq-mnist", root=str(tmp_path), valid_size=4).batches("valid", 4))
