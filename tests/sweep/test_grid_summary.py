"""``memloss collect`` on a user's own grid (no paper preset): grouped by the settings the grid
varies, mean and 95% interval per setting, and the settings paired by seed, every number
checked against a hand computation (Student's t with 2 degrees of freedom in closed form)."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from memloss.cli import main
from memloss.collect import collect
from memloss.core.runfiles import append_jsonl, write_json
from memloss.reports.grid_summary import grid_keys, setting_label

#: (scheme, lr) -> test accuracy of seeds 0, 1, 2
GRID = {("gal", 0.1): [0.90, 0.80, 0.85], ("gal", 0.01): [0.70, 0.72, 0.71],
        ("none", 0.1): [0.60, 0.50, 0.58], ("none", 0.01): [0.65, 0.66, 0.64]}


def _t975_df2() -> float:
    a = 2 * 0.975 - 1  # nu = 2: CDF(t) = 1/2 + t / (2 sqrt(2 + t^2))
    return a * math.sqrt(2 / (1 - a * a))


def _p_df2(t: float) -> float:
    """Two-sided p-value of Student's t with 2 degrees of freedom: 1 - |t| / sqrt(2 + t^2)."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def _write_run(path, scheme: str, lr: float, seed: int, test: float | None) -> None:
    write_json(path / "config.json", {
        "train": {"task": "temporal-order", "task_params": {"length": 15}, "seed": seed,
                  "lr": lr, "threads": seed + 1, "net": {"hidden_size": 8, "scheme": scheme},
                  "eval_modes": ["deterministic"]},
        "net": {"hidden_size": 8}, "path": "reference", "labels": {"scheme": scheme},
        "seed": seed, "versions": {"torch": "x"}, "created": "2026-01-01T00:00:00+00:00",
        "resumed": [], "info": {}})
    append_jsonl(path / "metrics.jsonl", {"epoch": 1, "step": 10, "valid_accuracy": 0.6,
                                          "seconds": 1.0})
    if test is not None:
        write_json(path / "final.json", {
            "weights": "best", "weights_step": 10, "step": 10, "epoch": 1, "stopped": "epochs",
            "metric": "accuracy", "best_valid": 0.6,
            "test": {"deterministic": {"accuracy": test}}})


@pytest.fixture
def grid_dir(tmp_path):
    for (scheme, lr), values in GRID.items():
        for seed, v in enumerate(values):
            _write_run(tmp_path / "grid" / f"{scheme}_{lr}_seed-{seed}", scheme, lr, seed, v)
    _write_run(tmp_path / "grid" / "unfinished", "moon", 0.5, 0, None)  # not in the summary
    return tmp_path / "grid"


def test_a_users_grid_gets_means_intervals_and_paired_comparisons(grid_dir):
    result = collect([grid_dir])
    grid = result.grid
    assert grid.keys == ["train.lr", "train.net.scheme"]  # the seed and threads left out
    acc = grid.summary[grid.summary["metric"] == "test.deterministic.accuracy"]
    assert len(acc) == 4 and set(acc["seeds"]) == {3}
    for (scheme, lr), values in GRID.items():
        row = acc[(acc["train.net.scheme"] == scheme) & (acc["train.lr"] == str(lr))].iloc[0]
        mean = sum(values) / 3
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
        half = _t975_df2() * sd / math.sqrt(3)
        assert row["setting"] == f"lr={lr}, net.scheme={scheme}"
        assert row["mean"] == pytest.approx(mean) and row["sd"] == pytest.approx(sd)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((mean - half, mean + half))
    paired = grid.paired[grid.paired["metric"] == "test.deterministic.accuracy"]
    assert len(paired) == 6 and set(paired["pairs"]) == {3}
    one = paired[(paired["a"] == "lr=0.1, net.scheme=gal")
                 & (paired["b"] == "lr=0.1, net.scheme=none")].iloc[0]
    d = [a - b for a, b in zip(GRID[("gal", 0.1)], GRID[("none", 0.1)])]
    md = sum(d) / 3
    sd = math.sqrt(sum((x - md) ** 2 for x in d) / 2)
    t = md / (sd / math.sqrt(3))
    assert one["mean_diff"] == pytest.approx(md) and one["t"] == pytest.approx(t)
    assert one["p_value"] == pytest.approx(_p_df2(t))
    half = _t975_df2() * sd / math.sqrt(3)
    assert (one["ci_low"], one["ci_high"]) == pytest.approx((md - half, md + half))
    valid = grid.paired[grid.paired["metric"] == "final.best_valid"]
    assert set(valid["p_value"]) == {1.0} and set(valid["mean_diff"]) == {0.0}


def test_runs_of_one_setting_have_one_group_and_no_comparison(grid_dir):
    runs = collect([grid_dir / "gal_0.1_seed-0", grid_dir / "gal_0.1_seed-1"]).runs
    assert grid_keys(runs) == []
    result = collect([grid_dir / "gal_0.1_seed-0", grid_dir / "gal_0.1_seed-1"])
    acc = result.grid.summary.set_index("metric").loc["test.deterministic.accuracy"]
    assert acc["setting"] == "all runs" and acc["seeds"] == 2 and result.grid.paired.empty


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_collect_writes_and_prints_the_grid(grid_dir, tmp_path, suffix, capsys):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"results{suffix}"
    assert main(["collect", str(grid_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "across seeds (the runs vary lr, net.scheme; mean and 95% interval):" in printed
    assert "paired by seed (a - b, 95% interval, paired t-test):" in printed
    assert "no paper summary" in printed
    read = pd.read_parquet if suffix == ".parquet" else pd.read_csv
    grid = read(tmp_path / f"results.grid{suffix}")
    paired = read(tmp_path / f"results.paired{suffix}")
    assert len(grid[grid["metric"] == "test.deterministic.accuracy"]) == 4
    assert len(paired[paired["metric"] == "test.deterministic.accuracy"]) == 6


def test_a_setting_names_a_scheme_by_what_differs_from_its_defaults():
    keys = ["train.net.scheme", "train.lr"]
    full = "gal:p=0.3,p_recurrent=0.25,p_embedding=0.0,tied=True,scaling=inverted"
    assert setting_label(keys, (full, 0.1)) == "net.scheme=gal:p=0.3, lr=0.1"
    assert setting_label(keys, (full + "+weight-drop:p=0.5,scaling=inverted", 0.1)) == \
        "net.scheme=gal:p=0.3+weight-drop, lr=0.1"
    assert setting_label(keys, ("not a scheme!", None)) == "net.scheme=not a scheme!, lr=none"
    assert setting_label([], ()) == "all runs"
