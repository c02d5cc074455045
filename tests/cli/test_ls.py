"""``memloss ls`` lists the registries, one name per line with a description."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from memloss.cli import main
from memloss.commands.ls import CATALOG, LISTINGS, build_catalog, listing, write_catalog
from memloss.models import list_cells, list_schemes

EXPECTED_SCHEMES = {"none", "zaremba", "gal", "moon", "hidden-dropout", "semeniuta", "zoneout",
                    "output-zoneout", "weight-drop"}


@pytest.mark.parametrize("kind,names", [("cells", {"lstm", "gru", "rnn", "layernorm-lstm"}),
                                        ("schemes", EXPECTED_SCHEMES)])
def test_ls(kind, names, capsys):
    assert main(["ls", kind]) == 0
    lines = [ln for ln in capsys.readouterr().out.strip().splitlines()
             if not ln.startswith(" ")]  # a scheme's parameters are indented under it
    listed = [ln.split()[0] for ln in lines]
    assert set(listed) == set(list_cells() if kind == "cells" else list_schemes())
    assert set(listed) >= names  # the built-in ones at least (other issues add more)
    assert all(len(ln.split(None, 1)) == 2 for ln in lines), "every name has a description"


def test_console_script_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "memloss", "ls", "schemes"], capture_output=True,
                         text=True, check=True).stdout
    assert "semeniuta" in out


def test_unknown_listing_is_an_error():
    with pytest.raises(SystemExit) as e:
        main(["ls", "kernels"])
    assert e.value.code == 2


@pytest.mark.parametrize("kind", sorted(LISTINGS))
def test_every_listing_is_its_registry(kind):
    """Whether a kind comes from the catalog or its registry, ``ls`` prints the registry:
    every name with its description, in registry order."""
    assert listing(kind) == LISTINGS[kind].from_registry()


def test_the_catalog_is_written_from_the_registries():
    stored = json.loads(CATALOG.read_text(encoding="utf-8"))
    assert stored == build_catalog(), (
        f"{CATALOG} differs from the registries (a cell, task or probe was added, renamed or "
        "described anew): write it again with `python -m memloss.commands.ls`")
    assert set(stored["listings"]) == {k for k, v in LISTINGS.items() if v.catalogued}


def test_write_catalog_writes_what_build_catalog_builds(tmp_path):
    path = write_catalog(tmp_path / "catalog.json")
    assert json.loads(path.read_text(encoding="utf-8")) == build_catalog()
