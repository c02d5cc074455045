"""Atomic file writes, used for every file memloss writes: a temp file beside the target,
flushed to disk, then renamed over it (and the folder flushed), so readers see the old file
or the whole new one and a failed write leaves the old file untouched. Temp files are named
``.NAME.*.tmp``; one left by a killed process is removed by the next writer of the run
(:func:`memloss.core.runfiles.clean_leftovers`)."""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "fsync_dir", "fsync_file",
           "file_digest", "write_error"]

_UMASK = os.umask(0)
os.umask(_UMASK)


_CHUNK = 1 << 20


def file_digest(path: "str | os.PathLike[str]", algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (read in chunks)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def write_error(path: "str | os.PathLike[str]", e: BaseException) -> BaseException:
    """The exception to raise for a failed write of ``path``: an ``OSError`` naming the file.

    Writers implemented in C++ or Rust (``torch.save``, safetensors) report a full disk as a
    ``RuntimeError`` ("unexpected pos ...") or their own error type, and Python's file
    writes raise ``OSError`` without a file name; all of them become ``OSError(ENOSPC)`` when
    the disk is full (``EIO`` otherwise) with the file named. Other exceptions pass as they are.
    """
    if isinstance(e, OSError):
        if e.filename is not None:
            return e
        return OSError(e.errno, e.strerror or str(e), os.fspath(path))
    if not isinstance(e, RuntimeError) and type(e).__module__.split(".")[0] != "safetensors":
        return e
    text = " ".join(str(e).split())[:160]
    full = "No space left" in text or "os error 28" in text
    try:
        full = full or shutil.disk_usage(os.path.dirname(os.fspath(path)) or ".").free < 2**20
    except OSError:
        pass
    code = errno.ENOSPC if full else errno.EIO
    return OSError(code, f"{os.strerror(code)} ({text})", os.fspath(path))


def fsync_file(path: "str | os.PathLike[str]") -> None:
    """Flush a written file's data to disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: "str | os.PathLike[str]") -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk, where the OS allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a folder
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the data is synced anyway
        pass
    finally:
        os.close(fd)


def atomic_write(path: "str | os.PathLike[str]", write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, then rename it over ``path``.

    If ``write`` fails, ``path`` is untouched and the temp file is removed.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a directory; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        err = write_error(path, e)
        if err is e:
            raise
        raise err from None
    return path


def atomic_write_bytes(path: "str | os.PathLike[str]", data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: "str | os.PathLike[str]", text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (no newline translation)."""
    return atomic_write_bytes(path, text.encode("utf-8"))
