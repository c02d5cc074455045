"""The command line answers at once: ``--help``, ``--version`` and every ``ls`` load
neither torch nor the report stack, and ``memloss train`` loads no report library.

Each command runs in a fresh interpreter that prints, when it exits, which of the heavy
packages it imported."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from memloss.commands.ls import LISTINGS
from tests.memloss.test_plugins import _dist

#: torch and the report stack (what `memloss report` and `memloss collect` need)
TORCH_AND_REPORTS = ("torch", "matplotlib", "pandas", "scipy", "seaborn")
#: what training never needs: the plotting and statistics libraries
REPORT_ONLY = ("matplotlib", "seaborn", "scipy.stats", "pandas")

_WRAPPER = """
import atexit, json, runpy, sys
watched = json.loads(sys.argv[1])
atexit.register(lambda: print("LOADED " + json.dumps([m for m in watched if m in sys.modules]),
                              file=sys.stderr))
sys.argv = ["memloss", *sys.argv[2:]]
runpy.run_module("memloss", run_name="__main__")
"""


def loaded(args: list[str], watched: tuple[str, ...],
           env: dict[str, str] | None = None) -> tuple[list[str], str]:
    """The watched modules a ``memloss ARGS`` process imported, and its output."""
    r = subprocess.run([sys.executable, "-c", _WRAPPER, json.dumps(watched), *args],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("LOADED ")][-1]
    return json.loads(line[len("LOADED "):]), r.stdout


@pytest.mark.parametrize("args", [["--help"], ["--version"],
                                  *(["ls", kind] for kind in LISTINGS)], ids=" ".join)
def test_help_version_and_ls_load_neither_torch_nor_reports(args):
    imported, out = loaded(args, TORCH_AND_REPORTS)
    assert imported == [], f"memloss {' '.join(args)} imported {imported}"
    assert out.strip()


def test_ls_schemes_lists_the_registry_without_torch():
    from memloss.models import SCHEMES

    _, out = loaded(["ls", "schemes"], ())
    # a scheme per unindented line; its parameters follow, indented
    assert [ln.split()[0] for ln in out.splitlines() if not ln.startswith(" ")] == SCHEMES.list()


PLUGIN_TASK = '''
from memloss.tasks.synthetic import Adding


class Longer(Adding):
    """a plug-in task: the adding problem under its own name"""
'''


def test_a_plugin_task_is_listed_through_the_registry(tmp_path):
    """With a task plug-in installed, ``ls tasks`` imports the task registry (hence torch:
    the check itself can fail) and lists the plug-in after memloss's own tasks."""
    site = tmp_path / "site"
    _dist(site, "lsplugin", "memloss.tasks", "longer-adding = lsplugin_task:Longer")
    (site / "lsplugin_task.py").write_text(PLUGIN_TASK)
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    imported, out = loaded(["ls", "tasks"], ("torch",), env=env)
    assert imported == ["torch"]
    assert out.splitlines()[-1].split(None, 1) == [
        "longer-adding", "a plug-in task: the adding problem under its own name"]
    _, plain = loaded(["ls", "tasks"], ())
    assert [ln.split()[0] for ln in out.splitlines()[:-1]] == [
        ln.split()[0] for ln in plain.splitlines()]


@pytest.mark.slow
def test_train_loads_no_report_library(tmp_path):
    args = ["train", "temporal-order", "--set", "task.length=8", "--set", "task.train_size=16",
            "--set", "task.valid_size=4", "--set", "task.test_size=4", "--set", "hidden_size=4",
            "--set", "max_steps=1", "--set", "progress=false", "--out", str(tmp_path / "run")]
    imported, out = loaded(args, REPORT_ONLY)
    assert "test deterministic" in out
    assert imported == [], f"memloss train imported {imported}"
