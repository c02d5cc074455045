"""tools/fidelity_tables.py --verdicts / --findings on run directories with known scores:
the rule's verdicts, the trivial baseline and the commits beside each table."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from memloss.core.runfiles import append_jsonl, write_json
from memloss.presets import PRESETS
from tests.sweep.tools import load_tool

SIZES = {"train_size": 64, "valid_size": 40, "test_size": 40}
#: (length, family) -> test accuracy of seeds 0, 1, 2 (Moon fails at test, the others learn)
SCORES = {("short", "gal"): [1.0, 0.99, 1.0], ("short", "ours"): [1.0, 1.0, 0.98],
          ("short", "moon"): [0.52, 0.54, 0.51], ("medium", "gal"): [1.0, 1.0, 0.99],
          ("medium", "ours"): [0.97, 1.0, 1.0], ("medium", "moon"): [0.55, 0.50, 0.52]}


def _tool():
    return load_tool("fidelity_tables")


def _write(path: Path, preset: str, seed: int, test: float) -> None:
    p = PRESETS.get(preset)
    write_json(path / "config.json", {
        "train": {"task": "temporal-order", "task_params": {**p.settings["task_params"], **SIZES},
                  "seed": seed, "net": {"hidden_size": 8}, "eval_modes": ["deterministic"]},
        "net": {"hidden_size": 8}, "path": "reference", "seed": seed, "resumed": [],
        "commit": f"{seed + 1:x}" * 40, "info": {"preset": p.record()}})
    for step, valid in ((10, 0.5), (20, test)):
        append_jsonl(path / "metrics.jsonl", {"epoch": step // 10, "step": step,
                                              "valid_accuracy": valid, "seconds": 1.0})
    write_json(path / "final.json", {"weights": "last", "weights_step": 20, "step": 20,
                                     "epoch": 2, "stopped": "epochs", "metric": "accuracy",
                                     "best_valid": test,
                                     "test": {"deterministic": {"accuracy": test}}})


@pytest.fixture
def sweep(tmp_path):
    for (length, family), values in SCORES.items():
        for seed, v in enumerate(values):
            name = f"semeniuta-t1-{length}-{family}-sequence"
            _write(tmp_path / "sweep" / f"{name}_seed-{seed}", name, seed, v)
    return tmp_path / "sweep"


def test_verdicts_by_the_rule(sweep, capsys, tmp_path):
    csv = tmp_path / "verdicts.csv"
    assert _tool().main([str(sweep), "--verdicts", "--verdicts-csv", str(csv)]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(csv).set_index("id")
    # Gal and update dropout beat Moon per sequence in every seed: reproduced
    assert table.loc["semeniuta-t1-moon-sequence-fails", "verdict"] == "reproduced"
    # "<25%": Moon per sequence on medium sequences is at 0.52, not below chance
    below = table.loc["semeniuta-t1-moon-sequence-medium-below-chance"]
    assert below["verdict"] == "contradicted" and "paper <0.25" in below["reason"]
    # the per-step rows were not run
    no_mem = table.loc["semeniuta-t1-no-memory-loss"]
    assert no_mem["verdict"] == "not tested" and "no runs of" in no_mem["reason"]
    # findings of tables with no runs at all are listed as not tested
    assert table.loc["krueger-t3-zoneout", "verdict"] == "not tested"
    assert "| **reproduced** |" in out and "| **contradicted** |" in out
    # every verdict names the commits of its runs and the trivial baseline it was held to
    assert table.loc["semeniuta-t1-moon-sequence-fails", "commits"].count(",") == 2
    assert "semeniuta-t1-short-gal-sequence:test" in table.loc["semeniuta-t1-moon-sequence-fails",
                                                                 "trivial"]


def test_tables_show_the_trivial_baseline_and_the_commits(sweep, capsys):
    assert _tool().main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "Trivial baseline of the same data (test): " in out
    assert "Commits: 111111111111, 222222222222, 333333333333." in out


def test_findings_list_needs_no_runs(capsys):
    assert _tool().main(["--findings"]) == 0
    out = capsys.readouterr().out
    assert "`gal-mc-dropout`" in out and "Section 4.2, Table 2" in out
    with pytest.raises(SystemExit) as exit_:
        _tool().main([])
    assert exit_.value.code == 2


def test_results_out_then_results_give_the_same_verdicts(sweep, capsys, tmp_path):
    tool = _tool()
    results = tmp_path / "results.csv"
    assert tool.main([str(sweep), "--verdicts", "--results-out", str(results)]) == 0
    from_runs = capsys.readouterr().out
    assert (tmp_path / "results.curves.csv").is_file()
    assert tool.main(["--results", str(results), "--verdicts"]) == 0
    from_file = capsys.readouterr().out
    # the trivial baselines of the file come from the presets' sizes, not the runs': compare
    # the verdict columns only
    cut = lambda text: [line.split("|")[1:6] for line in text.splitlines()]  # noqa: E731
    assert cut(from_file) == cut(from_runs)
    with pytest.raises(SystemExit) as exit_:
        tool.main(["--results", str(tmp_path / "none.csv"), "--verdicts"])
    assert exit_.value.code == 2 and "not a readable results CSV" in capsys.readouterr().err


def test_committed_results_regenerate_the_doc_table_without_the_data(sweep, capsys, tmp_path):
    tool = _tool()
    results, trivial = tmp_path / "results.csv", tmp_path / "trivial.csv"
    assert tool.main([str(sweep), "--results-out", str(results)]) == 0
    capsys.readouterr()
    assert tool.main(["--results", str(results), "--verdicts", "--trivial-out",
                      str(trivial)]) == 0
    computed = capsys.readouterr().out
    doc = tmp_path / "doc.md"
    doc.write_text(f"# title\n\n{tool.DOC_BEGIN}\nold\n{tool.DOC_END}\n\nafter\n",
                   encoding="utf-8")
    assert tool.main(["--results", str(results), "--verdicts", "--trivial", str(trivial),
                      "--doc", str(doc)]) == 0
    assert capsys.readouterr().out == computed  # the committed baselines give the same table
    text = doc.read_text(encoding="utf-8")
    assert text == tool.replace_block(text, computed) and "old" not in text
    assert text.startswith("# title\n") and text.endswith(f"{tool.DOC_END}\n\nafter\n")
    # a results file given twice, a document without markers, an option without --results:
    # one line each, exit 2, the document untouched
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n", encoding="utf-8")
    for argv, words in ((["--results", str(results), str(results), "--verdicts"],
                         "are given twice"),
                        (["--results", str(results), "--verdicts", "--doc", str(plain)],
                         "no '<!-- verdicts"),
                        ([str(sweep), "--rows", "semeniuta"], "--rows goes with --results"),
                        (["--results", str(results), "--doc", str(doc)],
                         "give --verdicts too")):
        with pytest.raises(SystemExit) as exit_:
            tool.main(argv)
        assert exit_.value.code == 2 and words in capsys.readouterr().err
    assert plain.read_text(encoding="utf-8") == "no markers\n"
    assert doc.read_text(encoding="utf-8") == text


def test_rows_name_the_quantity_of_the_final_weights_validation_value():
    """"valid (last)" is the last point of the curve the verdict rule reads: a language
    model's metric, a classifier's validation loss (named as such, never shown as error)."""
    tool = _tool()
    rows = [("krueger-t1-lstm", 0.23), ("semeniuta-t2-baseline", 50.0)]
    results = pd.DataFrame([{"row": r, "cpu": True, "split": "valid", "seed": s, "value": v,
                             "status": "finished"} for r, v in rows for s in range(3)])
    curves = {(r, True, s): [2 * v, v, 1.5 * v] for r, v in rows for s in range(3)}
    text = tool.rows_markdown(results, ["krueger-t1-", "semeniuta-t2-"], curves)
    assert "| `krueger-t1-lstm` | valid loss (last) | 3 | 0.345 |" in text
    assert "| `semeniuta-t2-baseline` | valid (last) | 3 | 75 |" in text
    assert "| `krueger-t1-lstm` | valid (last) |" not in text


def test_rows_name_their_seeds_where_they_are_not_the_first_n():
    """A sample of other seeds (a confirmatory one: seeds 12-14) says which; seeds 0 to n-1
    stay a bare count; a gap lists them; diverged seeds count as seeds."""
    tool = _tool()
    rows = {"semeniuta-t2-baseline": [0, 1, 2], "semeniuta-t2-ours-0.25-step": [12, 13, 14],
            "semeniuta-t2-ours-0.5-step": [0, 2, 5]}
    results = pd.DataFrame([{"row": r, "cpu": True, "split": "test", "seed": s, "value": 50.0 + s,
                             "status": "finished", "diverged_at": ""}
                            for r, seeds in rows.items() for s in seeds]
                           + [{"row": "semeniuta-t2-moon-0.5-sequence", "cpu": True, "split": "",
                               "seed": s, "value": float("nan"), "status": "diverged",
                               "diverged_at": "at epoch 1 step 11"} for s in (6, 7, 8)])
    text = tool.rows_markdown(results, ["semeniuta-t2-"])
    assert "| `semeniuta-t2-baseline` | test | 3 | 51 |" in text
    assert "| `semeniuta-t2-ours-0.25-step` | test | 3 (seeds 12-14) | 63 |" in text
    assert "| `semeniuta-t2-ours-0.5-step` | test | 3 (seeds 0, 2, 5) |" in text
    assert "| `semeniuta-t2-moon-0.5-sequence` | test | 3 (seeds 6-8) | diverged (3 of 3" in text
