"""The package as a library: one import name, layers that import downward only (import-linter),
importable from a project with its own ``models/`` ``tasks/`` ``diagnostics/`` ``reports/``,
and a training run that parses its scheme and builds its net once."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .environments import importable_paths

ROOT = Path(__file__).resolve().parents[1]
#: import-linter's ``lint-imports`` through the running interpreter: its script is not in the
#: interpreter's bin/ when a virtual environment reuses a system site that already has it
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())"]


def _lint(cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*LINT, "--config", str(cwd / "pyproject.toml"), "--no-cache"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_both_layer_contracts_hold():
    """The seven layers, and the order inside the application layer."""
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, line, broken", [
    # the models layer imports the reports layer: the seven-layer contract breaks
    ("models/masks.py", "import memloss.reports", "memloss.models.masks -> memloss.reports"),
    # inside the application: what a run is made of imports training, a function-level
    # import included (import-linter reads every import statement)
    ("runs.py", "def _late():\n    from memloss.training import train",
     "memloss.runs -> memloss.training"),
    # the library's sweep imports a command
    ("sweep/run.py", "import memloss.commands.train", "memloss.sweep.run -> memloss.commands.train"),
])
def test_a_contract_fails_on_an_upward_import(tmp_path, module, line, broken):
    """A copy of the package with one upward import added breaks a contract, named."""
    shutil.copytree(ROOT / "memloss", tmp_path / "memloss",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "memloss" / module
    target.write_text(target.read_text() + f"\n\n{line}  # an upward import\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = _lint(tmp_path, env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and broken in result.stdout


def _runtime_cycles(package: str = "memloss") -> list[list[str]]:
    """The import cycles among the package's modules at run time: every import statement
    (inside functions too) but those under ``if TYPE_CHECKING:``, one node per module."""
    import grimp

    graph = grimp.build_graph(package, cache_dir=None, exclude_type_checking_imports=True)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        order[v] = low[v] = len(order)
        stack.append(v)
        for w in edges[v]:
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in edges:
        if module not in order:
            visit(module)
    return cycles


def test_no_module_imports_upward_at_run_time():
    """No import cycle between any two modules, a package and its own modules included
    (``training/resume.py`` once reached back up into ``memloss.training`` for ``train``)."""
    assert _runtime_cycles() == []


def test_the_cycle_check_finds_a_function_level_cycle(tmp_path, monkeypatch):
    pkg = tmp_path / "cyclepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .low import f\n")
    (pkg / "low.py").write_text("def f():\n    from . import f as g\n    return g\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _runtime_cycles("cyclepkg") == [["cyclepkg", "cyclepkg.low"]]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True,
                   timeout=300)
    return next(out.glob("memloss-*.whl"))


def test_the_distribution_installs_one_top_level_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"memloss"}
    top_level = [n for n in names if n.endswith("top_level.txt")]
    if top_level:
        assert zipfile.ZipFile(wheel).read(top_level[0]).decode().split() == ["memloss"]


def test_the_wheel_carries_its_licence_and_type_information(wheel):
    """PEP 639 licence metadata with the LICENSE file, and py.typed (PEP 561)."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "memloss/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in meta.splitlines()
    assert "Classifier: Typing :: Typed" in meta and "Keywords: " in meta
    assert "Project-URL: " in meta


def test_the_wheel_carries_the_ls_catalog(wheel):
    """``memloss ls cells|tasks|probes`` read it (without it they import torch)."""
    assert "memloss/commands/ls_catalog.json" in zipfile.ZipFile(wheel).namelist()


def test_memloss_works_from_a_project_with_its_own_models_package(wheel, tmp_path):
    """A fresh virtual environment with the wheel installed; the user's project holds
    ``models/``, ``tasks/``, ``diagnostics/`` and ``reports/`` packages that fail loudly if
    memloss ever imported them."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                "get_paths()['purelib'])"], check=True, capture_output=True,
                               text=True).stdout.strip())
    with zipfile.ZipFile(wheel) as z:  # installing a pure-Python wheel is unpacking it
        z.extractall(site)
    # torch, pandas... come from the test environment, wherever it finds them (its own site or
    # a system site it reuses): path entries, so its editable memloss install is not picked up
    (site / "deps.pth").write_text("\n".join(importable_paths()) + "\n")
    project = tmp_path / "project"
    for pkg in ("models", "tasks", "diagnostics", "reports"):
        (project / pkg).mkdir(parents=True)
        (project / pkg / "__init__.py").write_text(
            f"raise ImportError('the project\\'s own {pkg} package was imported')\n")
    (project / "test_uses_memloss.py").write_text(
        "import memloss.training\nfrom memloss.models import Recurrent\n\n\n"
        "def test_import():\n    assert memloss.training.train and Recurrent\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}

    def run(*args: str) -> str:
        r = subprocess.run([str(python), *args], cwd=project, env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    where = run("-c", "import memloss; from memloss.models import Recurrent; "
                "print(memloss.__file__)")
    assert where.startswith(str(site))  # the installed copy, not the repository's
    assert "semeniuta" in run("-m", "memloss", "ls", "schemes")
    assert "1 passed" in run("-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "test_uses_memloss.py")


def test_one_training_run_parses_its_scheme_once_and_builds_its_net_once(tmp_path,
                                                                        monkeypatch):
    """From the command line to the printed result: one parse of any scheme text, one net,
    and config.json written but never read back."""
    from memloss.cli import main
    from memloss.core import runfiles as rf
    from memloss.models import net as net_module
    from memloss.models import schemes

    scheme = "semeniuta:p=0.3,sampling=sequence"
    parses: list[str] = []
    builds: list[int] = []
    parse_text, net_init = schemes._parse_text, net_module.Net.__init__

    def counting_parse(text: str):
        parses.append(text)
        return parse_text(text)

    def counting_init(self, config):
        import torch

        if torch.get_default_device().type != "meta":  # the memory check counts on "meta"
            builds.append(1)
        net_init(self, config)

    reads: list[Path] = []
    read_json = rf.read_json

    def counting_read(path, *args, **kwargs):
        if Path(path).name == rf.CONFIG:
            reads.append(Path(path))
        return read_json(path, *args, **kwargs)

    monkeypatch.setattr(schemes, "_parse_text", counting_parse)
    monkeypatch.setattr(net_module.Net, "__init__", counting_init)
    monkeypatch.setattr(rf, "read_json", counting_read)
    argv = ["train", "temporal-order", "--scheme", scheme, "--set", "task.length=8",
            "--set", "task.train_size=64", "--set", "task.valid_size=8",
            "--set", "task.test_size=8", "--set", "hidden_size=4", "--set", "max_steps=2",
            "--set", "eval_every=1", "--set", "progress=false", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    assert parses == [scheme]
    assert len(builds) == 1  # restore_best swaps the best weights in: no second net
    assert reads == []
