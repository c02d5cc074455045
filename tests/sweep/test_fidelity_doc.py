"""tools/fidelity_doc.py: the generated parts of docs/fidelity.md are what the committed
results give (the verdicts themselves: test_committed_verdicts.py), and a changed result
makes ``--check`` name the block it changes."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.sweep.tools import load_tool

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    return load_tool("fidelity_doc")


def _copy(tmp_path: Path) -> Path:
    """The files the tool reads (and the figures it writes), in a repository of their own."""
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "fidelity.md", tmp_path / "docs" / "fidelity.md")
    shutil.copytree(ROOT / "docs" / "results", tmp_path / "docs" / "results")
    return tmp_path


def test_the_committed_doc_is_what_the_committed_results_give(capsys):
    assert _tool().main(["--check", "--skip-figures"]) == 0, capsys.readouterr().err


def test_a_changed_value_makes_the_check_name_its_block(tmp_path, capsys):
    root = _copy(tmp_path)
    tool = _tool()
    csv = root / "docs" / "results" / "fidelity-cpu-word.csv"
    frame = pd.read_csv(csv, keep_default_na=False, dtype=str)
    # a training-mode score: shown in Zaremba's block, used by no verdict
    at = frame.index[(frame["row"] == "zaremba-small") & (frame["split"] == "train")
                     & (frame["seed"] == "0")][0]
    frame.loc[at, "value"] = str(float(frame.loc[at, "value"]) + 1.0)
    frame.to_csv(csv, index=False)
    doc = (root / "docs" / "fidelity.md").read_text(encoding="utf-8")

    assert tool.main(["--check", "--skip-figures", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "docs/fidelity.md (regime block 'zaremba')" in err
    assert "verdicts" not in err

    # regenerating rewrites that block alone, and then the check passes
    assert tool.main(["--skip-figures", "--root", str(root)]) == 0
    assert "wrote docs/fidelity.md" in capsys.readouterr().out
    new = (root / "docs" / "fidelity.md").read_text(encoding="utf-8")
    changed = [(a, b) for a, b in zip(doc.splitlines(), new.splitlines()) if a != b]
    assert len(new.splitlines()) == len(doc.splitlines()) and len(changed) == 1
    assert changed[0][1].startswith("| non-regularized LSTM, 2 x 200 | `zaremba-small` | train |")
    assert tool.main(["--check", "--skip-figures", "--root", str(root)]) == 0


def test_a_changed_test_score_makes_the_verdicts_stale(tmp_path, capsys):
    root = _copy(tmp_path)
    csv = root / "docs" / "results" / "fidelity-cpu-word.csv"
    frame = pd.read_csv(csv, keep_default_na=False, dtype=str)
    # Zaremba's medium network scored far worse than the non-regularized one in every seed
    sel = (frame["row"] == "zaremba-medium") & (frame["split"] == "test")
    frame.loc[sel, "value"] = "500.0"
    frame.to_csv(csv, index=False)
    assert _tool().main(["--check", "--skip-figures", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "verdicts block" in err and "regime block 'zaremba'" in err
    assert "docs/results/fidelity-cpu-verdicts.csv" in err


@pytest.mark.parametrize("marker", ["<!-- regime: gal-t1 -->", "<!-- /regime -->"])
def test_a_block_without_its_markers_is_one_clear_error(tmp_path, capsys, marker):
    root = _copy(tmp_path)
    doc = root / "docs" / "fidelity.md"
    text = doc.read_text(encoding="utf-8")
    # the gal-t1 block's marker (its end marker: the first one after its begin marker)
    at = text.index(marker, text.index("## Gal & Ghahramani 2016, Table 1"))
    doc.write_text(text[:at] + text[at + len(marker):], encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        _tool().main(["--check", "--skip-figures", "--root", str(root)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "no '<!-- regime: gal-t1 -->'" in err and "## Gal & Ghahramani 2016, Table 1" in err
    assert doc.read_text(encoding="utf-8") == text[:at] + text[at + len(marker):]


@pytest.mark.slow
def test_the_committed_figures_are_what_the_committed_probes_give(capsys):
    from PIL import Image
    import matplotlib

    drawn = Image.open(ROOT / "docs" / "img" / "fidelity-probes-gal-table-1-cpu.png")
    if f"version{matplotlib.__version__}," not in drawn.info.get("Software", ""):
        pytest.skip(f"the figures were drawn by another matplotlib ({drawn.info.get('Software')})"
                    ": their PNG bytes differ")
    assert _tool().main(["--check"]) == 0, capsys.readouterr().err


def test_a_section_names_its_regime_and_reads_its_own_results(tmp_path):
    """A character-level section says so and reads the CSV it names; an unknown regime is
    one clear error."""
    import dataclasses

    tool = _tool()
    config = tool.read_config(ROOT / tool.CONFIG)
    word = next(s for s in config.sections if s.key == "zaremba")
    results = ROOT / config.results
    frame = pd.read_csv(results, keep_default_na=False, dtype=str)
    own = tmp_path / "char.csv"
    frame[frame["row"].str.startswith("zaremba-")].to_csv(own, index=False)
    char = dataclasses.replace(word, regime="character", results=str(own))
    from memloss.evidence import read_results

    block = tool.regime_block(char, config, *read_results(own),
                              tool.fidelity_probes.read_csv(ROOT / config.probes_csv))
    assert "**At the character-level regime** (`memloss.presets.base.CHAR_CPU`" in block
    assert f"per-seed values in `{own}`" in block
    with pytest.raises(ValueError, match="unknown regime 'tiny'"):
        tool.regime_block(dataclasses.replace(word, regime="tiny"), config,
                          *read_results(results),
                          tool.fidelity_probes.read_csv(ROOT / config.probes_csv))


def _glance_rows() -> dict[str, str]:
    """The at-a-glance table of docs/fidelity.md: table label -> its verdict cell."""
    text = (ROOT / "docs" / "fidelity.md").read_text(encoding="utf-8")
    start = text.index("| table | runs | Kendall's tau-b")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("| "):
            break
        cells = line.split(" | ")
        rows[cells[0].lstrip("| ")] = cells[3]
    return rows


def test_the_at_a_glance_counts_are_the_rules_verdicts():
    """The hand-written summary per table counts the verdicts the rule gave (the committed
    verdicts CSV): "K of M findings **reproduced**", "K **contradicted**", "K **not
    tested**", "all M findings **X**", and no bold verdict the table does not have."""
    verdicts = pd.read_csv(ROOT / "docs" / "results" / "fidelity-cpu-verdicts.csv")
    checked = 0
    for label, cell in _glance_rows().items():
        author = label.split()[0]
        kind = re.search(r"(Table|figure) (\d+)$", label)
        if kind is None:  # "Tables 4, 5", "figures 3, 4": not measured
            assert "not measured" in cell, label
            continue
        where = f"{kind.group(1).capitalize()} {kind.group(2)}"
        mine = verdicts[verdicts["paper"].str.startswith(author)
                        & verdicts["where"].str.endswith(where)]["verdict"]
        assert len(mine), label
        counts = mine.value_counts().to_dict()
        for bold in re.findall(r"\*\*(reproduced|contradicted|not tested)", cell):
            assert bold in counts, f"{label}: '{bold}' but the rule gave {counts}"
        if m := re.search(r"(\d+) of (\d+) findings \*\*reproduced\*\*", cell):
            assert (int(m.group(1)), int(m.group(2))) == (counts.get("reproduced", 0),
                                                         len(mine)), (label, counts)
        for n, verdict in re.findall(r"(\d+) \*\*(contradicted|not tested)", cell):
            assert int(n) == counts.get(verdict, 0), (label, verdict, counts)
        if m := re.search(r"all (\d+) findings \*\*(\w+)\*\*", cell):
            assert {m.group(2): int(m.group(1))} == counts, (label, counts)
        checked += 1
    assert checked >= 8
