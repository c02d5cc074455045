"""The committed verdicts (docs/results/fidelity-cpu-verdicts.csv, and the table
docs/fidelity.md opens with) are what the rule gives on the committed results
(:data:`RESULT_FILES`)."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest

from memloss.evidence import preset_trivial, read_results, read_trivial, verdicts_frame
from memloss.tasks.data.errors import DataError
from memloss.tasks.text import default_text_root
from tests.sweep.tools import load_tool

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
#: the results the verdicts come from, as tools/fidelity_doc.py's metadata lists them: the
#: runs of Semeniuta Table 1's presets and of the word-level, character-level and
#: permuted-MNIST regimes (docs/fidelity.md)
RESULT_FILES = tuple(Path(p).name for p in tomllib.loads(
    (RESULTS / "fidelity-doc.toml").read_text(encoding="utf-8"))["verdicts"]["results"])


def _tool():
    return load_tool("fidelity_tables")


@pytest.mark.slow
def test_the_committed_trivial_baselines_are_the_datas():
    try:
        default_text_root()
    except DataError:
        pytest.skip("no Shakespeare corpus (MEMLOSS_DATA=/work/shared/data in a worktree)")
    committed = read_trivial(RESULTS / "fidelity-cpu-trivial.csv")
    rows = sorted({r for r, _, _ in committed})
    got = preset_trivial(rows, True)
    # a data set this machine lacks (Fashion-MNIST) gives no baseline here
    assert {k: round(v, 9) for k, v in got.items()} == {
        k: round(v, 9) for k, v in committed.items() if k in got}


def test_the_rule_gives_the_committed_verdicts():
    results, curves = read_results(*(RESULTS / name for name in RESULT_FILES))
    trivial = read_trivial(RESULTS / "fidelity-cpu-trivial.csv")
    got = verdicts_frame(results, curves, trivial)
    committed = pd.read_csv(RESULTS / "fidelity-cpu-verdicts.csv", keep_default_na=False)
    assert got["id"].tolist() == committed["id"].tolist()
    assert got["verdict"].tolist() == committed["verdict"].tolist()
    assert got["reason"].tolist() == committed["reason"].tolist()
    # the document opens with that table, as the tool writes it
    doc = (ROOT / "docs" / "fidelity.md").read_text(encoding="utf-8")
    tool = _tool()
    assert tool.replace_block(doc, tool.verdicts_markdown(got)) == doc
