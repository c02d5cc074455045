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


def test_layer_contract_holds():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_layer_contract_fails_on_an_upward_import(tmp_path):
    """A copy of the package where the models layer imports the reports layer breaks it."""
    shutil.copytree(ROOT / "memloss", tmp_path / "memloss",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    masks = tmp_path / "memloss" / "models" / "masks.py"  # a plain module in the models layer
    masks.write_text(masks.read_text() + "\nimport memloss.reports  # an upward import\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = _lint(tmp_path, env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and "memloss.models.masks -> memloss.reports" in result.stdout


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
    from memloss.cli import main
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

    monkeypatch.setattr(schemes, "_parse_text", counting_parse)
    monkeypatch.setattr(net_module.Net, "__init__", counting_init)
    argv = ["train", "temporal-order", "--scheme", scheme, "--set", "task.length=8",
            "--set", "task.train_size=64", "--set", "task.valid_size=8",
            "--set", "task.test_size=8", "--set", "hidden_size=4", "--set", "max_steps=2",
            "--set", "eval_every=1", "--set", "progress=false", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    assert parses.count(scheme) == 1
    assert len(builds) == 1  # restore_best swaps the best weights in: no second net
