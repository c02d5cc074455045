"""IDX files (the MNIST format), plain or gzip-compressed, with their header checked.

An IDX file is ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then the values in C order, big-endian.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from memloss.core.atomic import atomic_write_bytes

from .errors import DataError

__all__ = ["read_idx", "write_idx", "IDX_FORMAT"]

IDX_FORMAT = "an IDX file (magic 0x0000, dtype code, ndim, big-endian dims, data), plain or .gz"

_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
           0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype("i2"): 0x0B,
          np.dtype("i4"): 0x0C, np.dtype("f4"): 0x0D, np.dtype("f8"): 0x0E}


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(path, "file not found", IDX_FORMAT)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(path, f"corrupt or truncated gzip data ({e})", IDX_FORMAT) from None
    return raw


def read_idx(path: "str | os.PathLike[str]", *, ndim: int | None = None,
             dims: Sequence[int | None] | None = None) -> torch.Tensor:
    """Read an IDX file into a tensor (uint8 stays uint8).

    ``ndim`` / ``dims`` (None entries match anything) check the header; a mismatch, a bad
    magic number or a data length that disagrees with the header raises :class:`DataError`.
    """
    p = Path(path)
    raw = _read_bytes(p)
    if len(raw) == 0:
        raise DataError(p, "file is empty", IDX_FORMAT)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _DTYPES:
        raise DataError(p, f"bad magic number {raw[:4].hex()}", IDX_FORMAT)
    code, nd = raw[2], raw[3]
    header = 4 + 4 * nd
    if nd == 0 or len(raw) < header:
        raise DataError(p, f"header truncated or ndim={nd} invalid", IDX_FORMAT)
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=nd, offset=4))
    if ndim is not None and nd != ndim:
        raise DataError(p, f"has {nd} dimensions {shape}, expected {ndim}", IDX_FORMAT)
    if dims is not None:
        if len(dims) != nd or any(w is not None and w != s for w, s in zip(dims, shape)):
            raise DataError(p, f"has shape {shape}, expected {tuple(dims)}", IDX_FORMAT)
    dt = _DTYPES[code]
    want = math.prod(shape) * dt.itemsize  # exact (numpy's int64 product can wrap around)
    got = len(raw) - header
    if got != want:
        kind = "truncated" if got < want else "has trailing bytes"
        raise DataError(p, f"data {kind}: {got} bytes after the header, shape {shape} needs "
                        f"{want}", IDX_FORMAT)
    arr = np.frombuffer(raw, dtype=dt, offset=header).reshape(shape)
    return torch.from_numpy(arr.astype(dt.newbyteorder("="), copy=True))


def write_idx(path: "str | os.PathLike[str]", data: "torch.Tensor | np.ndarray") -> Path:
    """Write ``data`` as an IDX file (gzip-compressed if the name ends in .gz), atomically."""
    arr = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    native = arr.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}; use one of uint8, int8, int16, "
                         "int32, float32, float64")
    if arr.ndim == 0 or arr.ndim > 255:
        raise ValueError(f"IDX needs 1..255 dimensions, got {arr.ndim}")
    body = (bytes([0, 0, _CODES[native], arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
            + np.ascontiguousarray(arr, dtype=native.newbyteorder(">")).tobytes())
    p = Path(path)
    if p.suffix == ".gz":
        body = gzip.compress(body, mtime=0)
    return atomic_write_bytes(p, body)
