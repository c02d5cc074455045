"""``memloss collect``: runs with known metrics -> means, intervals, the paper's numbers, tau;
and the report's "measured beside the paper" section."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from memloss.cli import main
from memloss.collect import collect, find_runs
from memloss.core.runfiles import write_json, append_jsonl
from memloss.reports import report_from_runs
from memloss.reports.paper_tables import IntervalPlot

PAPER = "Semeniuta et al. 2016, Recurrent Dropout without Memory Loss"
#: row -> (paper's test accuracy, the measured test accuracies of three seeds)
ROWS = {"a": (1.00, [0.80, 0.90, 1.00]),
        "b": (0.25, [0.20, 0.30, 0.40]),
        "c": (0.50, [0.50, 0.50, 0.50])}


def _t975_df2() -> float:
    """Student's t 97.5% quantile with 2 degrees of freedom, in closed form:
    for nu = 2 the CDF is 1/2 + t / (2 sqrt(2 + t^2)), so t_p = (2p - 1) sqrt(2 / (1 - (2p - 1)^2))."""
    a = 2 * 0.975 - 1
    return a * math.sqrt(2 / (1 - a * a))


def _write_run(path, row: str, seed: int, test: float, bound: str = "") -> None:
    reported = ROWS[row][0]
    write_json(path / "config.json", {
        "train": {"task": "temporal-order", "task_params": {"length": 15}, "seed": seed,
                  "net": {"hidden_size": 8, "scheme": f"scheme-{row}"}, "eval_modes": ["deterministic"]},
        "net": {"hidden_size": 8}, "path": "reference", "labels": {"scheme": f"scheme-{row}",
                                                                   "scheme_short": row},
        "seed": seed, "versions": {"torch": "x"}, "created": "2026-01-01T00:00:00+00:00",
        "resumed": [],
        "info": {"preset": {"name": f"semeniuta-t1-{row}", "paper": PAPER, "table": "Table 1",
                            "row": f"row {row}", "metric": "accuracy",
                            "reported": {"test": reported},
                            "bounds": {"test": bound} if bound else {}, "cpu_of": None}}})
    append_jsonl(path / "metrics.jsonl", {"epoch": 1, "step": 10, "train_accuracy": 0.5,
                                          "valid_accuracy": 0.6, "seconds": 2.5})
    write_json(path / "final.json", {"weights": "best", "weights_step": 10, "step": 10, "epoch": 1,
                                     "stopped": "epochs", "metric": "accuracy", "best_valid": 0.6,
                                     "test": {"deterministic": {"accuracy": test, "loss": 1.0}}})


@pytest.fixture
def sweep_dir(tmp_path):
    for row, (_, values) in ROWS.items():
        for seed, v in enumerate(values):
            _write_run(tmp_path / "sweep" / f"{row}_seed-{seed}", row, seed, v)
    (tmp_path / "sweep" / ".sweep").mkdir()
    return tmp_path / "sweep"


def test_summary_means_intervals_and_tau_match_a_hand_computation(sweep_dir):
    result = collect([sweep_dir])
    assert len(result.runs) == 9 and result.runs["finished"].all()
    s = result.summary.set_index("row")
    t = _t975_df2()
    assert t == pytest.approx(4.302652729911275)
    # row a: mean 0.9, sd 0.1, half-width t * 0.1 / sqrt(3)
    a = s.loc["row a"]
    assert a["seeds"] == 3 and a["mean"] == pytest.approx(0.9) and a["sd"] == pytest.approx(0.1)
    half = t * 0.1 / math.sqrt(3)
    assert a["ci_low"] == pytest.approx(0.9 - half) and a["ci_high"] == pytest.approx(0.9 + half)
    assert a["reported"] == 1.0 and bool(a["inside"])          # 1.0 < 0.9 + 0.248
    b = s.loc["row b"]
    assert b["mean"] == pytest.approx(0.3) and bool(b["inside"])
    c = s.loc["row c"]  # three equal values: a zero-width interval at 0.5, which holds 0.5
    assert c["sd"] == 0 and c["ci_low"] == c["ci_high"] == 0.5 and bool(c["inside"])
    # tau: paper (1.0, 0.25, 0.5) vs measured (0.9, 0.3, 0.5): all three pairs concordant
    agree = result.agreement.set_index("split").loc["test"]
    assert agree["rows"] == 3 and agree["kendall_tau"] == pytest.approx(1.0)


def test_tau_counts_discordant_pairs_and_a_bound_is_one_sided(tmp_path):
    # paper (1.0, 0.25, 0.5); measured means (0.9, 0.6, 0.5): pairs (a,b) concordant,
    # (a,c) concordant, (b,c) discordant -> tau = (2 - 1) / 3
    for row, values in {"a": [0.9, 0.9], "b": [0.6, 0.6], "c": [0.5, 0.5]}.items():
        for seed, v in enumerate(values):
            _write_run(tmp_path / f"{row}{seed}", row, seed, v, bound="<" if row == "b" else "")
    result = collect([tmp_path])
    assert result.agreement["kendall_tau"].iloc[0] == pytest.approx(1 / 3)
    b = result.summary.set_index("row").loc["row b"]
    assert b["bound"] == "<" and not bool(b["inside"])  # the paper says < 0.25; measured 0.6


def test_one_seed_has_no_interval(tmp_path):
    _write_run(tmp_path / "r", "a", 0, 0.9)
    s = collect([tmp_path / "r"]).summary.iloc[0]
    assert s["seeds"] == 1 and math.isnan(s["ci_low"]) and s["inside"] is None


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_collect_writes_three_tables(sweep_dir, tmp_path, suffix, capsys):
    out = tmp_path / f"results{suffix}"
    assert main(["collect", str(sweep_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "9 runs" in printed and "row a" in printed and "kendall_tau" in printed
    read = pd.read_parquet if suffix == ".parquet" else pd.read_csv
    runs = read(out)
    summary = read(tmp_path / f"results.summary{suffix}")
    agreement = read(tmp_path / f"results.agreement{suffix}")
    assert len(runs) == 9 and len(summary) == 3 and len(agreement) == 1
    for col in ("train.task", "train.net.hidden_size", "train.task_params.length", "path",
                "test.deterministic.accuracy", "train_seconds", "versions.torch", "preset.name"):
        assert col in runs.columns, col
    assert runs["train_seconds"].eq(2.5).all()


def test_collect_finds_runs_and_fails_clearly(tmp_path, sweep_dir, capsys):
    assert len(find_runs([sweep_dir])) == 9
    assert main(["collect", str(tmp_path / "nope"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["collect", str(sweep_dir), "--out", str(tmp_path / "x.xlsx")]) == 2
    assert ".parquet or .csv" in capsys.readouterr().err


def test_the_report_shows_each_table_beside_the_paper(sweep_dir):
    paths = find_runs([sweep_dir])
    report = report_from_runs(paths)
    assert report.sections[0].title == "Results"  # every run; the summary over seeds follows
    section = report.sections[1]
    assert section.title == "Semeniuta et al. 2016 Table 1: measured beside the paper"
    kinds = [type(b).__name__ for b in section.blocks]
    assert kinds == ["Text", "Table", "Figure"]
    table = section.blocks[1].frame
    assert list(table["row"]) == ["row a", "row b", "row c"] and list(table["inside"]) == ["yes"] * 3
    plot = section.blocks[2].plot
    assert isinstance(plot, IntervalPlot)
    fig = plot()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "accuracy (fraction)" and ax.get_ylabel() == "table row"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["row a", "row b", "row c"]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # inverted once: the first row on top


def test_fidelity_tables_tool_writes_each_row_with_its_seeds_and_the_ordering(sweep_dir, capsys):
    from tests.sweep.tools import load_tool

    module = load_tool("fidelity_tables")
    png = sweep_dir.parent / "curves.png"
    assert module.main([str(sweep_dir), "--curves", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "Table 1, test accuracy** (3 rows)" in out
    assert "| row a | 3 | 0.9 | [0.6516, 1.148] | 0.8, 0.9, 1 | 1 |" in out
    assert "| row c | 3 | 0.5 | [0.5, 0.5] | 0.5, 0.5, 0.5 | 0.5 |" in out
    # accuracy: higher is better, so the ordering starts with the highest mean
    assert "best first: row a 0.9; row c 0.5; row b 0.3." in out
    assert "over 3 rows" in out
    with pytest.raises(SystemExit) as exit_:  # bad input: one line, no traceback
        module.main([str(sweep_dir / "missing")])
    assert exit_.value.code == 2
    assert "missing does not exist" in capsys.readouterr().err
