"""Every README command works on every set-up the README offers: ``.venv`` reusing the torch
(and dev tools) of the system python through ``--system-site-packages``, or with torch and
the tools installed into it. The Makefile runs each tool through ``.venv``'s interpreter
(``python -m ...``), never a script path in ``.venv/bin`` that a reusing ``.venv`` lacks."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .environments import reusing_venv

ROOT = Path(__file__).resolve().parents[1]
#: the make targets the README and the Makefile's header offer
TARGETS = ("setup", "test", "test-all", "test-tiers", "demo", "bench", "bench-gate",
           "dashboard")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _venv(setup: str, tmp_path: Path) -> Path:
    if setup == "reused":
        return reusing_venv(tmp_path / "venv").parents[1]
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests run outside a virtual environment: no .venv of their own")
    return Path(sys.prefix)


def _dry_run(venv: Path, target: str) -> list[str]:
    """The commands ``make TARGET`` would run for this ``.venv`` (``make -n``)."""
    r = subprocess.run(["make", "-n", "-C", str(ROOT), f"VENV={venv}", target],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("setup", ["reused", "own"])
def test_every_make_target_runs_tools_that_exist(setup, tmp_path):
    venv = _venv(setup, tmp_path)
    bin_dir = f"{venv}/bin/"
    for target in TARGETS:
        for line in _dry_run(venv, target):
            for word in re.findall(rf"{re.escape(bin_dir)}[^\s;|&)\"']+", line):
                assert os.access(word, os.X_OK), (
                    f"make {target} runs {word}, which this .venv ({setup}) lacks: {line}")


def test_a_reusing_venv_has_no_tool_scripts_but_imports_the_tools(tmp_path):
    """The set-up the first test guards against is real: no script, every module."""
    python = reusing_venv(tmp_path / "venv")
    assert not any((python.parent / tool).exists() for tool in ("asv", "lint-imports", "pytest"))
    subprocess.run([str(python), "-c", "import torch, asv, importlinter, pytest"], check=True,
                   timeout=300)


@pytest.mark.slow
@pytest.mark.e2e
def test_make_test_and_the_bench_gate_run_on_a_venv_reusing_the_system_torch(tmp_path):
    """The README's ``make test`` (the tests that start tools and fresh environments) and the
    bench gate's first step on a ``.venv`` that reuses the system's torch and dev tools."""
    venv = reusing_venv(tmp_path / "venv").parents[1]
    (venv / ".installed").touch()  # set up: make's stamp, newer than pyproject.toml
    args = ("-p no:cacheprovider tests/test_architecture.py "
            "-k 'layer_contracts_hold or own_models_package'")
    r = subprocess.run(["make", "-C", str(ROOT), f"VENV={venv}", "test", f"PYTEST_ARGS={args}"],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 passed" in r.stdout, r.stdout[-3000:]
    machine = next(line for line in _dry_run(venv, "bench-gate") if "machine --yes" in line)
    env = {**os.environ, "HOME": str(tmp_path)}  # asv writes ~/.asv-machine.json
    r = subprocess.run(shlex.split(machine.split(">")[0]), cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / ".asv-machine.json").is_file()



def _marks_of_every_test() -> dict[str, set[str]]:
    """Every collected test's id and its marker names, from one ``--collect-only`` run (with
    ``-m ""``: nothing deselected), as tests/conftest.py marks them."""
    plugin = ("import pytest\n"
              "@pytest.hookimpl(trylast=True)\n"
              "def pytest_collection_modifyitems(items):\n"
              "    for i in items:\n"
              "        print('MARKS', i.nodeid, *sorted({m.name for m in i.iter_markers()}))\n")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "list_marks.py").write_text(plugin)
        r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p",
                            "no:cacheprovider", "-p", "list_marks", "-m", ""], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": tmp}, capture_output=True,
                           text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return {w[1]: set(w[2:]) for w in map(str.split, r.stdout.splitlines()) if w[:1] == ["MARKS"]}


@pytest.mark.slow
def test_ci_reaches_every_test_function():
    """CI runs the fast tier, then the tiers `.ci/run` names (every tier but ``full``): every
    test function keeps at least one case there, so no capability goes untested in CI."""
    from _pytest.mark.expression import Expression

    tiers = re.search(r'make test-tiers TIERS="([^"]+)"', (ROOT / ".ci/run").read_text())
    assert tiers, ".ci/run no longer names the tiers it runs"
    ci = Expression.compile(f"not (slow or full or e2e or faults or gpu) or ({tiers.group(1)})")
    marks = _marks_of_every_test()
    assert len(marks) > 2000  # the collection really ran
    function = {t: t.split("[", 1)[0] for t in marks}
    reached = {function[t] for t, m in marks.items() if ci.evaluate(lambda name: name in m)}
    assert set(function.values()) - reached == set()
    assert any("full" in m for m in marks.values())  # and CI leaves some cases out
