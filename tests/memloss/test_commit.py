"""Every run records the commit of the code that trained it; collect carries it."""
from __future__ import annotations

import subprocess
from pathlib import Path

import memloss
from memloss.collect import collect
from memloss.core.runfiles import read_json
from memloss.runs import source_commit
from memloss.training import train

SOURCE = Path(memloss.__file__).resolve().parents[1]


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(SOURCE), *args], capture_output=True, text=True)


def test_source_commit_is_the_checkouts_head_or_the_package_version():
    commit = source_commit()
    head = _git("rev-parse", "HEAD")
    if head.returncode == 0 and Path(_git("rev-parse", "--show-toplevel").stdout.strip()) == SOURCE:
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", "memloss").stdout.strip())
        assert commit == head.stdout.strip() + ("+dirty" if dirty else "")
    else:
        assert commit == f"memloss {memloss.__version__}"


def test_config_json_and_collect_carry_the_commit(tmp_path, tiny_to_config):
    out = train(tiny_to_config.replace(epochs=1), tmp_path / "run", command=["test"]).path
    recorded = read_json(out / "config.json")["commit"]
    assert recorded == source_commit()
    assert collect([out]).runs["commit"].tolist() == [recorded]
