"""``memloss ls`` lists the registries, one name per line with a description."""
from __future__ import annotations

import subprocess
import sys

import pytest

from memloss.cli import main
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
