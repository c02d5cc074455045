"""Reports read right for any set of runs: the finding in numbers (ties named), train and
test in the decisive chart, a measured sentence atop every probe section, small multiples,
noise drawn as zero, a wrapping contents block, clean legends, next steps for unscored runs."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from memloss.reports.describe import MAX_LINES, headline, probe_sections, probe_takeaway, \
    probe_words, results_sections
from memloss.reports.document import Figure, Report, Section, Text
from memloss.reports.html import render_html
from memloss.reports.plots import LinePlot
from memloss.reports.runs import RunRecord, read_runs


def _scored(run: RunRecord, label: str, test: float, train: float) -> RunRecord:
    final = {"metric": "accuracy", "weights": "last",
             "test": {"deterministic": {"accuracy": test}},
             "train": {"train-mode": {"accuracy": train}}}
    return replace(run, label=label, final=final, path=run.path.with_name(label))


def test_a_tie_is_named_and_the_scheme_that_differs_given_with_its_split(make_run):
    """Five schemes at 100% tie (not 'best none'); the one that differs is named with its
    train and test numbers; the chart shows train beside test."""
    base = read_runs([make_run("a", probes=False)])[0]
    runs = [_scored(base, s, 1.0, 0.99) for s in ("none", "gal", "zaremba", "semeniuta", "zoneout")]
    runs.append(_scored(base, "moon", 0.31, 0.97))
    head = headline(runs)
    assert "none, gal, zaremba, semeniuta and zoneout tie at 100.0% test accuracy" in head.text
    assert "moon differs: 31.0% at test against 97.0% in training" in head.text
    assert "best" not in head.text
    data = head.figure.plot.data
    assert head.figure.plot.hue == "split" and set(data["split"]) == {"train", "test"}
    assert "train" in head.figure.title.lower() and "test" in head.figure.title.lower()
    # all equal: they tie, and no row is highlighted as the worst
    same = headline(runs[:3])
    assert "all 3 schemes tie at 100.0% test accuracy (none, gal and zaremba)" in same.text
    assert same.table.highlight == ()


def test_unscored_runs_say_what_to_run_next(make_run):
    base = read_runs([make_run("a", probes=False)])[0]
    imported = replace(base, final={"weights": "last", "metric": "accuracy",
                                    "imported": True, "test": {}})
    text = headline([imported]).text
    assert "imported and not scored yet" in text and f"memloss eval {base.path}" in text
    assert "did not finish" not in text
    assert "Then `memloss probe RUN` measures memory loss" in text  # not probed yet
    # nothing scored: no empty train column on the first screen
    untrained = replace(imported, metrics=())  # an import has no training log either
    assert list(headline([untrained]).table.frame.columns) == ["run", "scheme", "metric"]
    unfinished = replace(base, final={})
    assert f"memloss train --resume {base.path}" in headline([unfinished]).text
    # the runs' table is shown once: in the headline, not again as a Results section
    assert results_sections([imported]) == [] and results_sections([base])
    probed = read_runs([make_run("b")])[0]
    assert probed.diagnostics
    text = headline([replace(probed, final={"imported": True, "test": {}})]).text
    assert text.endswith("Then `memloss report` again adds the test numbers to the probes "
                         "below."), text


def _decay(label: str, rate: float, modes=("deterministic", "train-mode"), T: int = 5,
           noise: float = 0.0) -> pd.DataFrame:
    rows = []
    for mode in modes:
        for t in range(T):
            rows.append({"probe": "state-decay", "mode": mode, "quantity": "c_norm",
                         "layer": 0, "t": t, "value": rate ** t if mode != "train-mode" else 1.0})
            rows.append({"probe": "state-decay", "mode": mode, "quantity": "c_ratio",
                         "layer": 0, "t": t,
                         "value": 1.0 + (noise * (-1) ** t if noise else
                                         (rate ** t - 1.0) * (mode != "train-mode"))})
    return pd.DataFrame(rows)


def _record(label: str, frame: pd.DataFrame) -> RunRecord:
    return RunRecord(Path(f"/runs/{label}"), {}, (), {}, {"state-decay": frame}, {}, label=label)


def test_every_probe_section_opens_with_its_measured_sentence():
    """The sentence names the scheme whose state fades, with its numbers in the probe's own
    words, the training-mode number beside it, against the others."""
    runs = [_record("moon", _decay("moon", 0.5))] + [
        _record(s, _decay(s, 1.0)) for s in ("none", "gal")]
    words = probe_words(runs, "state-decay")
    text = probe_takeaway(words, pd.concat(
        [r.diagnostics["state-decay"].assign(label=r.label, group="", run=r.name, seed=0)
         for r in runs]))
    assert text == ("Measured: cell-state norm ||c_t|| (L2 norm) at time step t = 4, "
                    "deterministic inference: 0.0625 (training mode 1) under moon, against 1 "
                    "under none and gal.")
    section = probe_sections(runs)[0]
    assert isinstance(section.blocks[0], Text) and section.blocks[0].text == text


def test_many_lines_become_small_multiples_per_scheme_and_noise_is_drawn_as_zero():
    modes = ("deterministic", "other-scaling", "mc", "train-mode")
    runs = [_record(s, _decay(s, 0.9, modes, noise=1e-7 if s == "none" else 0.0))
            for s in ("none", "gal", "moon")]
    assert 3 * len(modes) > MAX_LINES
    figures = [b for b in probe_sections(runs)[0].blocks if isinstance(b, Figure)]
    assert len(figures) == 2  # a figure per quantity
    for f in figures:
        assert f.plot.col == "label" and f.plot.hue == "inference" and f.plot.sharey
        assert "A panel per scheme" in f.caption
    ratio = next(f for f in figures if "relative" in f.title)
    none = ratio.plot.data[ratio.plot.data["label"] == "none"]["value"]
    assert set(none) == {1.0}  # the 1e-7 wobble is noise, drawn as exactly 1
    assert "floating-point noise" in ratio.caption


def test_legends_list_no_group_headings_and_the_contents_wrap():
    frame = pd.DataFrame([{"t": t, "value": float(t), "label": s, "inference": m}
                          for s in ("a", "b") for m in ("x", "y") for t in range(3)])
    fig = LinePlot(frame, x="t", hue="label", style="inference", ylabel="v (units)")()
    texts = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    plt.close(fig)
    assert texts == ["a", "b", "x", "y"]
    sections = tuple(Section(f"Section number {i} with a long title") for i in range(20))
    html = render_html(Report("t", sections))
    assert "flex-wrap:wrap" in html
    assert '</a>\n<a href="#section-number-1' in html  # a break between entries


def test_an_imported_run_lists_only_the_settings_that_applied(make_run):
    from memloss.reports.describe import settings_sections
    from memloss.reports.document import Table

    base = read_runs([make_run("a", probes=False)])[0]
    config = {**base.config, "info": {**(base.config.get("info") or {}),
                                      "imported": {"source": "model.pt"}}}
    imported = replace(base, config=config, final={"imported": True, "test": {}})
    blocks = settings_sections([imported])[0].blocks
    shared = next(b for b in blocks if isinstance(b, Table)).frame
    settings = set(shared["setting"])
    assert {"task", "task.length", "hidden_size", "scheme"} <= settings
    assert not settings & {"lr", "epochs", "optimizer", "seed", "init_range", "forget_bias"}
    assert "imported (nothing trained)" in blocks[0].text
    trained = set(next(b for b in settings_sections([base])[0].blocks
                       if isinstance(b, Table)).frame["setting"])
    assert {"lr", "epochs", "optimizer"} <= trained


def test_spread_schemes_name_the_lowest_and_highest_with_the_median_between():
    runs = [_record(s, _decay(s, r)) for s, r in (("a", 0.5), ("b", 0.7), ("c", 0.8), ("d", 0.9))]
    words = probe_words(runs, "state-decay")
    text = probe_takeaway(words, pd.concat(
        [r.diagnostics["state-decay"].assign(label=r.label, group="", run=r.name, seed=0)
         for r in runs]))
    assert text.endswith("lowest under a, 0.0625 (training mode 1); highest under d, 0.656 "
                         "(training mode 1); the other 2 schemes lie between (median 0.325).")
