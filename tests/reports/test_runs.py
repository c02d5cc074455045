"""Reading run directories: labels, paper matching, and clear errors on bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from memloss.core.runfiles import RunDirError
from memloss.reports.describe import describe_runs, probe_frame, results_table
from memloss.reports.document import Figure, Table
from memloss.config import TrainConfig
from memloss.models import parse_scheme
from memloss.presets import match_preset, scheme_key
from memloss.reports.runs import read_run, read_runs


def test_seeds_share_a_label_and_schemes_are_short(four_runs):
    runs = read_runs(four_runs)
    assert [r.label for r in runs] == ["moon/sequence"] * 2 + ["semeniuta/step"] * 2
    assert {r.group for r in runs} == {""}
    assert parse_scheme("semeniuta:p=0.25,sampling=step+zaremba:p=0.5").short == \
        "semeniuta/step+zaremba"


def test_other_differences_become_groups(make_run):
    runs = read_runs([make_run("a", length=6), make_run("b", length=9)])
    assert [r.group for r in runs] == ["length=6", "length=9"]
    assert runs[0].label == runs[1].label == "moon/sequence"


def test_same_short_name_different_rates_keeps_full_specs(make_run, tmp_path):
    a = make_run("a")
    b = make_run("b")
    cfg = json.loads((b / "config.json").read_text())
    cfg["train"]["net"]["scheme"] = "moon:p=0.25,sampling=sequence,scaling=expectation"
    cfg["labels"]["scheme"] = cfg["train"]["net"]["scheme"]
    (b / "config.json").write_text(json.dumps(cfg))
    labels = [r.label for r in read_runs([a, b])]
    assert labels[0] != labels[1] and "p=0.25" in labels[1]


def test_results_table_has_modes_and_paper_numbers(make_run):
    runs = read_runs([make_run("m", length="medium"), make_run("s", scheme="semeniuta",
                                                                 length="medium")])
    table = results_table(runs)
    assert list(table["test (deterministic)"]) == [0.25, 1.0]
    assert list(table["train (train-mode)"]) == [0.8, 0.8]
    # Semeniuta Table 1, medium: Moon per-sequence train 100%, test <25%
    assert list(table["paper test"]) == ["<0.25", "1"]
    assert list(table["preset"]) == ["semeniuta-t1-medium-moon-sequence",
                                     "semeniuta-t1-medium-ours-step"]


def test_preset_matching_ignores_scaling_and_sizes():
    assert scheme_key("moon:p=0.5,sampling=sequence,scaling=expectation") == \
        scheme_key("moon:p=0.5,sampling=sequence")
    cfg = TrainConfig(task="temporal-order", task_params={"length": "short", "test_size": 50},
                      net={"scheme": "gal:p=0,p_recurrent=0.5"})
    assert match_preset(cfg).name == "semeniuta-t1-short-gal-sequence"
    assert match_preset(cfg.replace(scheme="gal:p=0.3,p_recurrent=0.5")) is None
    assert match_preset(cfg, ["memloss", "train", "krueger-t1-lstm"]).name == "krueger-t1-lstm"


def test_describe_draws_a_figure_per_probe_and_tables_scalars(four_runs):
    runs = read_runs(four_runs)
    sections = {s.title: s for s in describe_runs(runs)}
    assert list(sections) == ["Results", "Training", "Probe: state-decay",
                              "Probe: test-time-scaling", "Configs"]
    decay = sections["Probe: state-decay"]
    figs = [b for b in decay.blocks if isinstance(b, Figure)]
    assert len(figs) == 1 and figs[0].plot.x == "t" and figs[0].plot.hue == "label"
    tables = [b for b in decay.blocks if isinstance(b, Table)]
    assert "decay_rate" in set(tables[0].frame["quantity"])
    sweep = [b for b in sections["Probe: test-time-scaling"].blocks if isinstance(b, Figure)]
    assert sweep[0].plot.x == "length"
    frame = probe_frame(runs, "state-decay")
    assert set(frame["seed"]) == {0, 1}
    configs = sections["Configs"].blocks
    assert all("created" not in c.text and "seconds" not in c.text for c in configs)


def test_missing_directory_and_files(tmp_path: Path):
    with pytest.raises(RunDirError, match="does not exist"):
        read_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="config.json is missing"):
        read_run(tmp_path / "empty")
    with pytest.raises(ValueError, match="no run directories"):
        read_runs([])


def test_corrupt_files_name_the_file(make_run):
    run = make_run("a")
    (run / "config.json").write_text('{"train": {"task": ')  # truncated
    with pytest.raises(RunDirError, match="config.json is not valid JSON"):
        read_run(run)
    run = make_run("b")
    (run / "metrics.jsonl").write_text('{"epoch": 1, "step": 1}\n{"epo')
    with pytest.raises(RunDirError, match="metrics.jsonl line 2"):
        read_run(run)
    run = make_run("c")
    (run / "diagnostics" / "state-decay.csv").write_text("")
    with pytest.raises(RunDirError, match="state-decay.csv is not a readable CSV"):
        read_run(run)
    run = make_run("d")
    (run / "diagnostics" / "state-decay.csv").write_text("a,b\n1,2\n")
    with pytest.raises(RunDirError, match="no 'value' column"):
        read_run(run)


def test_same_directory_twice_is_rejected(make_run):
    run = make_run("a")
    with pytest.raises(ValueError, match="given twice"):
        read_runs([run, run])


def test_runs_without_probes_or_metrics_still_report(make_run, tmp_path):
    from memloss.reports import report_from_runs, write_report

    a = make_run("a", probes=False)
    (a / "metrics.jsonl").write_text("")
    b = make_run("b", scheme="semeniuta", probes=False)
    (b / "final.json").unlink()
    report = report_from_runs([a, b])
    assert [s.title for s in report.sections] == ["Results", "Training", "Configs"]
    table = report.sections[0].blocks[1].frame
    assert table["test (deterministic)"].isna().tolist() == [False, True]
    html, pdf = write_report(report, tmp_path / "r")
    assert html.exists() and pdf.exists()


def test_many_schemes_get_distinct_colours():
    import pandas as pd

    from memloss.reports.plots import LinePlot

    frame = pd.DataFrame([{"label": f"s{i}", "t": t, "value": i + t} for i in range(12)
                          for t in range(3)])
    fig = LinePlot(frame, x="t", hue="label")()
    colours = {tuple(line.get_color()) if not isinstance(line.get_color(), str)
               else line.get_color() for line in fig.axes[0].get_lines()[:12]}
    assert len(colours) == 12


def test_recorded_preset_wins(make_run):
    run = make_run("a")  # length 6: no preset matches by setup
    cfg = json.loads((run / "config.json").read_text())
    cfg["info"] = {"preset": {"name": "some-row", "reported": {"train": 1.0, "test": 0.25},
                              "bounds": {"test": "<"}}}
    (run / "config.json").write_text(json.dumps(cfg))
    table = results_table(read_runs([run]))
    assert table.loc[0, "preset"] == "some-row" and table.loc[0, "paper test"] == "<0.25"
