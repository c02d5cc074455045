"""Virtual environments for the tests that check a set-up: the import path of the running
interpreter as a fresh environment can reuse it, and a ``.venv`` as ``make setup`` makes it
when the ``python3`` that runs ``make`` already has torch and the dev tools."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["importable_paths", "reusing_venv"]


def importable_paths() -> list[str]:
    """The running interpreter's import path as directories a fresh environment can add (a
    ``.pth`` file of paths): its own site, a system site it reuses, and paths such a site adds;
    not a directory holding a ``memloss`` package (the repository, an editable install's
    source). The ``.pth`` hooks of these directories are not run from there."""
    return [p for p in dict.fromkeys(sys.path) if p and Path(p).is_dir()
            and not (Path(p) / "memloss" / "__init__.py").exists()]


def reusing_venv(path: Path) -> Path:
    """A virtual environment made the way ``make setup`` makes ``.venv`` when ``python3``
    already has torch: ``--system-site-packages`` over the base interpreter. Everything the
    running interpreter imports (torch, pytest, asv, import-linter, memloss's dependencies) is
    importable in it, from outside it, so none of their scripts is in its ``bin/`` (pip leaves
    them out there too). Returns its python."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", "--system-site-packages", str(path)],
                   check=True, capture_output=True, timeout=300)
    python = path / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True,
                          timeout=120).stdout.strip()
    Path(site, "system-site.pth").write_text("\n".join(importable_paths()) + "\n")
    return python
