"""IDX reader: round trip, gzip, committed fixtures, and every malformed-file error."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from memloss.tasks.data.errors import DataError
from memloss.tasks.data.idx import read_idx, write_idx
from tests.tasks.data.helpers import FIXTURES


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32,
                                   torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["x.idx", "x.idx.gz"])
def test_round_trip(tmp_path, dtype, name):
    x = (torch.arange(24) - 5).reshape(2, 3, 4).to(dtype)
    p = write_idx(tmp_path / name, x)
    y = read_idx(p)
    assert y.dtype == dtype and torch.equal(x, y)


def test_header_is_big_endian(tmp_path):
    p = write_idx(tmp_path / "x", torch.tensor([1, 256], dtype=torch.int32))
    raw = p.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0C, 1]) and raw[4:8] == (2).to_bytes(4, "big")
    assert raw[8:] == (1).to_bytes(4, "big") + (256).to_bytes(4, "big")


def test_fixture_files_read_as_mnist():
    x = read_idx(FIXTURES / "mnist" / "train-images-idx3-ubyte.gz", dims=(None, 28, 28))
    y = read_idx(FIXTURES / "mnist" / "train-labels-idx1-ubyte.gz", ndim=1)
    assert x.shape == (24, 28, 28) and x.dtype == torch.uint8 and y.shape == (24,)
    assert int(y.max()) <= 9 and int(x.max()) > 0


def bad(tmp_path, data: bytes, gz: bool = False):
    p = tmp_path / ("bad.gz" if gz else "bad")
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nothere: file not found \(expected an IDX file"):
        read_idx(tmp_path / "nothere")


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="file is empty"):
        read_idx(bad(tmp_path, b""))


def test_bad_magic(tmp_path):
    with pytest.raises(DataError, match="bad magic number"):
        read_idx(bad(tmp_path, b"P5\n28 28\n255\n" + bytes(784)))


def test_truncated_data(tmp_path):
    good = write_idx(tmp_path / "g", torch.zeros(3, 28, 28, dtype=torch.uint8)).read_bytes()
    with pytest.raises(DataError, match=r"data truncated: .* shape \(3, 28, 28\) needs 2352"):
        read_idx(bad(tmp_path, good[:-10]))
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(bad(tmp_path, good + b"\0"))


def test_truncated_gzip(tmp_path):
    good = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 200]) + bytes(range(200)))
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(bad(tmp_path, good[: len(good) // 2]))


def test_header_truncated(tmp_path):
    with pytest.raises(DataError, match="header truncated"):
        read_idx(bad(tmp_path, bytes([0, 0, 8, 3, 0, 0])))


def test_shape_checks(tmp_path):
    p = write_idx(tmp_path / "x.gz", np.zeros((2, 5), dtype=np.uint8))
    with pytest.raises(DataError, match=r"has 2 dimensions \(2, 5\), expected 1"):
        read_idx(p, ndim=1)
    with pytest.raises(DataError, match=r"has shape \(2, 5\), expected \(None, 28, 28\)"):
        read_idx(p, dims=(None, 28, 28))


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="IDX cannot store dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.complex64))
