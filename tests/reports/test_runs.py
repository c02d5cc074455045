"""Reading run directories: labels, paper matching, and clear errors on bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from memloss.core.runfiles import RunDirError
from memloss.reports.describe import describe_runs, probe_frame, results_table
from memloss.reports.document import Attachment, Figure, Table
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
    assert list(table["train"]) == [0.8, 0.8]
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
    decay_title = "Probe: How the state fades over time"
    sweep_title = "Probe: Accuracy on longer sequences under each inference mode"
    assert list(sections) == ["Results", "Training", decay_title, sweep_title, "Data files",
                              "Settings"]
    assert [s.appendix for s in sections.values()] == [False] * 4 + [True] * 2
    decay = sections[decay_title]
    figs = [b for b in decay.blocks if isinstance(b, Figure)]
    assert len(figs) == 1 and figs[0].plot.x == "t" and figs[0].plot.hue == "label"
    assert figs[0].plot.panel_ylabels == {"cell-state norm ||c_t||": "L2 norm",
                                          "hidden-state norm ||h_t||": "L2 norm"}
    assert "2 seeds per scheme" in figs[0].caption and "(deterministic, train-mode)" in figs[0].caption
    # raw rows (the fitted decay rates included) go to a CSV file in the appendix, not inline
    assert not [b for b in decay.blocks if isinstance(b, Table)]
    files = {a.name: a for a in sections["Data files"].blocks if isinstance(a, Attachment)}
    assert set(files) == {"results.csv", "probe-state-decay.csv", "probe-test-time-scaling.csv"}
    assert "decay_rate" in set(files["probe-state-decay.csv"].frame["quantity"])
    sweep = [b for b in sections[sweep_title].blocks if isinstance(b, Figure)]
    assert sweep[0].plot.x == "length" and sweep[0].plot.markers
    frame = probe_frame(runs, "state-decay")
    assert set(frame["seed"]) == {0, 1}
    shared, differ = [b for b in sections["Settings"].blocks if isinstance(b, Table)]
    assert "seed" in list(differ.frame.columns) and "scheme" in list(differ.frame.columns)
    assert "created" not in set(shared.frame["setting"]) and "lr" in set(shared.frame["setting"])


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
    assert [s.title for s in report.sections] == ["Results", "Training", "Data files", "Settings"]
    table = report.sections[0].blocks[1].frame
    assert table["test (deterministic)"].isna().tolist() == [False, True]
    html, pdf = write_report(report, tmp_path / "r")
    assert html.exists() and pdf.exists()


def test_many_schemes_get_distinct_colours():
    import pandas as pd

    from memloss.reports.plots import LinePlot

    frame = pd.DataFrame([{"label": f"s{i}", "t": t, "value": i + t} for i in range(12)
                          for t in range(3)])
    fig = LinePlot(frame, x="t", hue="label", ylabel="norm (L2)")()
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


def _with_paper(run: Path, reported: dict, bounds: dict | None = None, **settings) -> Path:
    cfg = json.loads((run / "config.json").read_text())
    cfg["info"] = {"preset": {"name": "paper-row", "reported": reported, "bounds": bounds or {},
                              "paper_settings": {"task": "temporal-order", "hidden_size": 256,
                                                 "optimizer": "sgd", "lr": 0.1, "epochs": 5000,
                                                 "batch_size": 32, **settings}}}
    cfg["task_info"]["chance"] = 0.25
    (run / "config.json").write_text(json.dumps(cfg))
    return run


def test_deviations_are_flagged_with_the_likely_reason(make_run):
    """moon's test 0.25 vs the paper's 1.0 is flagged with the setup differences and the MC
    number; semeniuta's 1.0 matches; a number within 10 points is not flagged."""
    from memloss.reports.describe import headline, results_flags

    moon = _with_paper(make_run("m"), {"train": 0.85, "test": 1.0})
    sem = _with_paper(make_run("s", scheme="semeniuta"), {"train": 0.8, "test": 1.0})
    runs = read_runs([moon, sem])
    frame = results_table(runs)
    flags = results_flags(runs, frame)
    assert [(f.row, f.column) for f in flags] == [(0, "test (deterministic)")]
    note = flags[0].note
    assert "25.0% vs the paper's 100.0% (more than 10 points off)" in note
    assert "MC inference on the same net gives 90.0%" in note
    assert "budget: 2 epochs (paper 5000)" in note and "size: 8 units (paper 256)" in note
    assert "optimiser: adam (paper sgd), learning rate 0.01 (paper 0.1)" in note
    head = headline(runs)
    assert "moon/sequence differs: 25.0% at test against 80.0% in training" in head.text
    assert "(chance 25.0%)" in head.text
    assert "1 measured number deviates from the paper or lies below chance" in head.text
    assert head.table.flags and head.table.highlight == (0,)
    assert head.figure.plot.chance == 0.25 and head.figure.plot.paper == "paper"


def test_below_chance_is_flagged_unless_the_paper_reports_it():
    from memloss.reports.deviations import deviation_note
    from memloss.reports.wording import metric

    acc = metric("accuracy")
    assert "below chance (25.0%)" in deviation_note(0.065, (0.25, ""), acc, 0.25)
    assert deviation_note(0.065, (0.25, "<"), acc, 0.25) is None  # the paper says <25% too
    assert deviation_note(0.2, None, acc, 0.25) is None  # within 10 points of chance
    assert deviation_note(0.30, (0.25, "<"), acc, 0.25) is None
    assert "more than 10 points off" in deviation_note(0.40, (0.25, "<"), acc, 0.25)
    ppl = metric("perplexity")
    assert deviation_note(105.0, (100.0, ""), ppl, None) is None
    assert "more than 10% of the paper's value" in deviation_note(115.0, (100.0, ""), ppl, None)


def test_a_cpu_preset_run_records_the_papers_setup():
    from memloss.presets import PRESETS

    rec = PRESETS.get("semeniuta-t1-short-moon-sequence-cpu").record()
    assert rec["paper_settings"]["hidden_size"] == 256 and rec["paper_settings"]["epochs"] == 5000


def test_every_figure_has_words_and_a_unit_on_its_y_axis(four_runs):
    """No figure of a report is labelled with the generic column name 'value'."""
    import matplotlib.pyplot as plt

    from memloss.reports import report_from_runs

    report = report_from_runs(four_runs)
    figures = [report.headline.figure] + [b for s in report.sections for b in s.blocks
                                          if isinstance(b, Figure)]
    assert len(figures) == 4
    for figure in figures:
        fig = figure.plot()
        labels = [ax.get_ylabel() for ax in fig.axes if ax.get_visible()]
        plt.close(fig)
        assert labels and all(lab and lab != "value" for lab in labels), \
            (figure.title, labels)


def test_a_probe_is_drawn_with_the_words_its_json_carries(make_run):
    """A probe no memloss registry knows (a plug-in's, or a newer one) renders with the title
    and quantity words it wrote into its <probe>.json; a known probe with the class's words."""
    run = make_run("a")
    rows = [{"probe": "echo", "scheme": "none", "cell": "lstm", "scaling": "inverted",
             "mode": "deterministic", "quantity": "echo_size", "layer": 0, "t": t,
             "value": 0.5 ** t} for t in range(4)]
    pd.DataFrame(rows).to_csv(run / "diagnostics" / "echo.csv", index=False)
    (run / "diagnostics" / "echo.json").write_text(json.dumps({
        "probe": "echo", "title": "How loud the echo stays",
        "quantities": {"echo_size": {"words": "size of the echo", "unit": "decibels"}}}))
    sections = {s.title: s for s in describe_runs(read_runs([run]))}
    echo = sections["Probe: How loud the echo stays"]
    fig = next(b for b in echo.blocks if isinstance(b, Figure))
    assert fig.plot.panel_ylabels == {"size of the echo": "decibels"}
    assert "Probe: How the state fades over time" in sections  # the registered class's title
