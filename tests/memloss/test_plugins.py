"""Plug-ins through Python entry points: a separately installed package adds a callback that
``--set hooks=...`` finds; broken plug-ins are skipped with a warning."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from memloss.core.registry import Registry

from .conftest import TINY_TO

PLUGIN = '''
from memloss.training import Callback


class Marker(Callback):
    """Writes marker.txt into the run directory when training ends."""

    def __init__(self, config):
        self.config = config

    def on_train_end(self, trainer, final):
        (trainer.run_dir / "marker.txt").write_text(f"{trainer.step} {self.config.seed}")
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "memloss-marker-plugin"
version = "0.0.1"

[project.entry-points."memloss.callbacks"]
marker = "memloss_marker_plugin:Marker"

[tool.setuptools]
py-modules = ["memloss_marker_plugin"]
'''


def test_a_callback_from_an_installed_package_is_found_by_hooks(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "memloss_marker_plugin.py").write_text(PLUGIN)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(site), str(src)], check=True,
                   capture_output=True, timeout=300)
    assert list(site.glob("memloss_marker_plugin-0.0.1.dist-info/entry_points.txt"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "run"
    run = subprocess.run([sys.executable, "-m", "memloss", "train", "temporal-order", *TINY_TO,
                          "--set", "hooks=marker", "--set", "seed=3", "--out", str(out)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert (out / "marker.txt").read_text() == "3 3"
    listed = subprocess.run([sys.executable, "-c", "from memloss.training import CALLBACKS; "
                             "print(CALLBACKS.describe('marker'))"], env=env, capture_output=True,
                            text=True, timeout=300)
    assert listed.returncode == 0 and listed.stdout.strip() == (
        "Writes marker.txt into the run directory when training ends."), listed.stderr
    # without the package on the path the name is unknown, and says what is valid
    plain = subprocess.run([sys.executable, "-m", "memloss", "train", "temporal-order", *TINY_TO,
                            "--set", "hooks=marker", "--out", str(tmp_path / "x")],
                           capture_output=True, text=True, timeout=600)
    assert plain.returncode == 2 and "unknown callback 'marker'" in plain.stderr


def _dist(site: Path, name: str, group: str, entry: str) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")


def test_registries_load_entry_points_once_and_skip_broken_ones(tmp_path, monkeypatch, caplog):
    _dist(tmp_path, "good_plugin", "memloss.test-things", "double = good_mod:double")
    _dist(tmp_path, "bad_plugin", "memloss.test-things", "broken = no_such_module:thing")
    (tmp_path / "good_mod.py").write_text("def double(x):\n    'Doubles.'\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry = Registry("thing", entry_points="memloss.test-things")
    reg.register("builtin")(lambda x: x)
    with caplog.at_level(logging.WARNING, logger="memloss.core.registry"):
        assert reg.list() == ["builtin", "double"]
    assert reg.get("double")(4) == 8 and reg.describe("double") == "Doubles."
    assert "thing plug-in 'broken' (no_such_module:thing) could not be loaded" in caplog.text
    assert "broken" not in reg
