"""The check every asv benchmark makes first: the memloss it imports is the code of the
commit its results are stored under.

asv labels results with a commit hash, but a benchmark measures whatever ``import memloss``
finds. In a virtualenv/conda environment asv installs the commit it benchmarks and sets
``ASV_COMMIT``; in an ``existing`` environment (``--python=same``) nothing is installed and
asv sets none of its variables, so the code must be the clean checkout asv runs in (its
``HEAD``; label the results with ``--set-commit-hash $(git rev-parse HEAD)``). Either way every
``.py`` file of the imported package must have the same git blob hash as that file in the
commit, or the benchmark stops with :class:`WrongCheckout` naming the first difference.
Outside asv (e.g. pytest importing the suites) there is nothing to check.
Not an asv benchmark module (asv collects nothing here).
"""
from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["WrongCheckout", "blob_hash", "commit_blobs", "mismatches", "under_asv",
           "assert_measuring_checkout"]


class WrongCheckout(RuntimeError):
    """The imported package is not the code of the commit being benchmarked."""


def blob_hash(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _git(repo: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], check=True, text=True,
                              capture_output=True).stdout
    except FileNotFoundError:
        raise WrongCheckout("git is not on PATH: the benchmarks need it to check which "
                            "commit they measure") from None
    except subprocess.CalledProcessError as e:
        raise WrongCheckout(f"git {' '.join(args)} failed in {repo}: {e.stderr.strip()}") from None


def commit_blobs(repo: Path, commit: str) -> dict[str, str]:
    """``{path: blob id}`` of every ``.py`` file in ``commit`` of the repository at ``repo``."""
    out: dict[str, str] = {}
    for line in _git(repo, "ls-tree", "-r", "--full-tree", commit).splitlines():
        meta, path = line.split("\t", 1)
        _mode, kind, sha = meta.split()
        if kind == "blob" and path.endswith(".py"):
            out[path] = sha
    return out


def mismatches(package_dir: Path, tree: dict[str, str]) -> list[str]:
    """Files of the imported package whose content is not in the commit at the same place.

    A file ``memloss/a/b.py`` of the package may sit in the repository as ``memloss/a/b.py``
    or, with a setuptools ``package-dir`` mapping, under any folder ending in ``a/b.py``;
    it matches when one of those tree entries has its blob id.
    """
    package_dir = Path(package_dir)
    bad = []
    for f in sorted(package_dir.rglob("*.py")):
        rel = f.relative_to(package_dir).as_posix()
        full = f"{package_dir.name}/{rel}"
        places = [p for p in tree if p == full or p.endswith("/" + full) or p == rel
                  or p.endswith("/" + rel)]
        sha = blob_hash(f.read_bytes())
        if not places:
            bad.append(f"{full} is not in the commit")
        elif all(tree[p] != sha for p in places):
            bad.append(f"{full} differs from the commit's {places[0]}")
    return bad


@functools.cache
def _checked(package_dir: str, repo: str, commit: str) -> None:
    bad = mismatches(Path(package_dir), commit_blobs(Path(repo), commit))
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise WrongCheckout(
            f"the benchmarks import memloss from {package_dir}, which is not commit "
            f"{commit[:8]} of {repo}: {bad[0]}{more}. Run asv from the checkout it should "
            "measure, with a committed, clean tree (asv run/continuous build each commit; "
            "with --python=same pass --set-commit-hash $(git rev-parse HEAD))")


def under_asv() -> bool:
    """Whether this process is an asv benchmark process: asv sets ``ASV=true`` for the
    environments it builds, but not in an ``existing`` one, where the process is still
    asv's ``benchmark.py`` script."""
    if os.environ.get("ASV") == "true":
        return True
    main = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    return main is not None and main.name == "benchmark.py" and main.parent.name == "asv"


def assert_measuring_checkout() -> None:
    """Raise :class:`WrongCheckout` when asv runs this benchmark against other code than
    the commit it stores the result under; a no-op outside asv. Checked once per process.

    The checkout is ``ASV_CONF_DIR`` (set by asv in the environments it builds), else the
    git work tree holding these benchmarks (asv reads them from the checkout it runs in);
    the commit is ``ASV_COMMIT``, else that checkout's ``HEAD``."""
    if not under_asv():
        return
    import memloss

    repo = os.environ.get("ASV_CONF_DIR") or _git(Path(__file__).resolve().parent,
                                                  "rev-parse", "--show-toplevel").strip()
    commit = os.environ.get("ASV_COMMIT") or _git(Path(repo), "rev-parse", "HEAD").strip()
    _checked(str(Path(memloss.__file__).resolve().parent), repo, commit)
