"""Atomic writes: the old file survives a failed write; no temp files are left behind."""
from __future__ import annotations

import os

import pytest

from memloss.core.atomic import atomic_write_bytes, atomic_write_text


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "x.csv"
    atomic_write_text(target, "old\n")

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_atomic_write_refuses_a_directory(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        atomic_write_bytes(tmp_path, b"x")
