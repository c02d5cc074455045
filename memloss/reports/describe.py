"""Describe runs as a :class:`~memloss.reports.document.Report`: tables and plot descriptions.

Nothing is drawn here. A report opens with its finding (:func:`headline`: the measured
result in a sentence with its numbers, the decisive chart with chance and the paper's
numbers marked, and the table beside the paper, deviations flagged), then the body
(:data:`BODY`: results, training curves, one section per probe) and an appendix
(:data:`APPENDIX`: the raw tables as CSV files beside the report, the settings).

A new section is one entry in :data:`BODY` (or :data:`APPENDIX`): a function from the
labelled runs to a list of sections. The collected summary beside the paper
(:func:`~memloss.reports.paper_tables.paper_table_sections`) follows ``"results"``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import pandas as pd

from .deviations import chance_level, deviation_note, paper_number, setup_differences
from .document import Attachment, Figure, Flag, Headline, Section, Table, Text
from .paper import paper_row, paper_value
from .paper_tables import paper_table_sections
from .plots import BarPlot, LinePlot, ordered_unique
from .runs import VOLATILE_KEYS, RunRecord, flat_config
from .wording import Metric, Quantity, axis_label, counted, deviate, metric, mode_words, quantity, x_axis

__all__ = ["results_table", "results_flags", "headline", "training_curves", "probe_sections",
           "settings_sections", "describe_runs", "probe_frame", "probe_words", "ProbeWords",
           "X_COLUMNS", "BODY", "probe_takeaway", "MAX_LINES", "NOISE", "APPENDIX", "SectionBuilder", "test_mode"]

#: numeric columns a probe may be drawn over, in order of preference
X_COLUMNS = ("t", "length", "lag", "k", "bin")
#: probe columns that never define a curve (per-run constants, spreads, replicate indices
#: such as the unit, which are averaged with a band)
_NOT_KEYS = ("probe", "scheme", "cell", "value", "std", "run", "label", "group", "seed", "unit",
             "samples", "t0", "perturb", "count")
#: probe quantities left out of the figures (shown by another quantity, or drawn apart)
_NOT_DRAWN = ("error", "reliability_confidence", "reliability_accuracy", "reliability_fraction")
#: reliability bins holding fewer predictions than this share are not drawn (their
#: accuracy is noise: the spikes of an almost empty bin)
MIN_BIN_SHARE = 0.02

SectionBuilder = Callable[[Sequence[RunRecord]], list[Section]]


def _metric(run: RunRecord) -> str:
    return str(run.final.get("metric") or "accuracy")


def test_mode(runs: Sequence[RunRecord]) -> str:
    """The inference mode the headline reports: deterministic where measured."""
    modes = list(dict.fromkeys(m for r in runs for m in (r.final.get("test") or {})))
    return "deterministic" if "deterministic" in modes or not modes else modes[0]


def _train_value(run: RunRecord, name: str) -> float | None:
    """The train-split number: final.json's scored training split (train-mode inference)
    where the run has one, else the last epoch's training-mode metric."""
    scored = (run.final.get("train") or {}).get("train-mode", {})
    if isinstance(scored, dict) and name in scored:
        return float(scored[name])
    last = next((m for m in reversed(run.metrics) if f"train_{name}" in m), {})
    value = last.get(f"train_{name}")
    return None if value is None else float(value)


def results_table(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run: its label, group, seed, train and test metrics (every inference
    mode of final.json), and the paper's reported train/test numbers where the run
    records its paper row."""
    modes = list(dict.fromkeys(m for r in runs for m in (r.final.get("test") or {})))
    rows = []
    for r in runs:
        name = _metric(r)
        preset = paper_row(r.config)
        row: dict[str, object] = {"run": r.name, "group": r.group, "scheme": r.label,
                                  "seed": r.seed, "metric": name,
                                  "train": _train_value(r, name)}
        for mode in modes:
            row[f"test ({mode})"] = (r.final.get("test") or {}).get(mode, {}).get(name)
        row["paper train"] = paper_value(preset, "train")
        row["paper test"] = paper_value(preset, "test")
        row["preset"] = "" if preset is None else preset.name
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame["group"].astype(bool).any():
        frame = frame.drop(columns="group")
    if frame["seed"].nunique(dropna=False) <= 1:
        frame = frame.drop(columns="seed")
    if not frame["preset"].astype(bool).any():
        frame = frame.drop(columns=["paper train", "paper test", "preset"])
    return frame


def _number(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if pd.isna(out) else out


def results_flags(runs: Sequence[RunRecord], frame: pd.DataFrame) -> tuple[Flag, ...]:
    """Flags on the cells of :func:`results_table` that deviate from the paper or lie below
    chance, with the likely reason."""
    flags = []
    mode = test_mode(runs)
    for i, r in enumerate(runs):
        m = metric(_metric(r))
        preset = paper_row(r.config)
        reasons = setup_differences(r)
        chance = chance_level(r)
        test = r.final.get("test") or {}
        mc = _number((test.get("mc") or {}).get(_metric(r)))
        for column, key, value in (("train", "train", frame.loc[i, "train"]),
                                   (f"test ({mode})", "test",
                                    frame.loc[i, f"test ({mode})"] if f"test ({mode})" in frame
                                    else None)):
            note = deviation_note(_number(value), paper_number(preset, key), m, chance,
                                  reasons=reasons, mc=mc if key == "test" else None)
            if note and column in frame.columns:
                flags.append(Flag(i, column, f"{r.label}{' (' + r.group + ')' if r.group else ''}, "
                                             f"{key}: {note}"))
    return tuple(flags)


def _tolerance_text(runs: Sequence[RunRecord]) -> str:
    m = metric(_metric(runs[0]))
    return (f"Flagged: a number more than {m.tolerance_words()} from the paper's, or that many "
            "below chance, with the likely reason.")


def _bar_frame(runs: Sequence[RunRecord], mode: str) -> pd.DataFrame:
    """One row per run and split: its train and test numbers (``split``), the paper's
    number for that split where the run records its paper row."""
    rows = []
    for r in runs:
        name = _metric(r)
        preset = paper_row(r.config)
        test = (r.final.get("test") or {}).get(mode, {}).get(name)
        if test is None:
            continue
        for split, value in (("train", _train_value(r, name)), ("test", test)):
            paper = paper_number(preset, split)
            rows.append({"scheme": r.label, "group": r.group or "all runs", "split": split,
                         "value": value, "paper": None if paper is None else paper[0],
                         "bound": "" if paper is None else paper[1]})
    return pd.DataFrame(rows, columns=["scheme", "group", "split", "value", "paper", "bound"]
                        ).dropna(subset=["value"])


def _names(names: Sequence[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _not_scored(runs: Sequence[RunRecord]) -> str:
    """What the runs lack and the command that gives it: imported runs and finished runs are
    scored with ``memloss eval``, unfinished runs resumed with ``memloss train --resume``."""
    imported = [r for r in runs if r.final.get("imported")]
    unfinished = [r for r in runs if not r.final]
    unscored = [r for r in runs if r.final and not r.final.get("imported")]
    parts = []
    if imported:
        parts.append(f"{counted(len(imported), 'run')} imported and not scored yet (nothing was "
                     f"trained): score with `memloss eval {imported[0].path}`")
    if unscored:
        parts.append(f"{counted(len(unscored), 'run')} finished without a test score: score "
                     f"with `memloss eval {unscored[0].path}`")
    if unfinished:
        parts.append(f"{counted(len(unfinished), 'run')} without final.json (training did not "
                     f"finish): continue with `memloss train --resume {unfinished[0].path}`")
    then = (" Then `memloss report` again adds the test numbers to the probes below."
            if all(r.diagnostics for r in runs) else
            " Then `memloss probe RUN` measures memory loss and `memloss report` shows it.")
    return f"{counted(len(runs), 'run')}; none has a test result yet. " + "; ".join(parts) + \
        "." + then


def _group_finding(means: pd.DataFrame, m: "Metric", mode: str) -> str:
    """The finding within one group: the schemes that tie at the best test number (equal as
    shown), and each scheme that differs with its train and test numbers."""
    test = means["test"]
    shown = test.map(m.show)
    best = test.min() if m.lower_is_better else test.max()
    top = [s for s in test.index if shown[s] == m.show(best)]
    others = sorted((s for s in test.index if s not in top),
                    key=lambda s: test[s] if not m.lower_is_better else -test[s])
    split = (lambda s: f"{m.show(test[s])} at test against {m.show(means.loc[s, 'train'])} "
             f"in training" if pd.notna(means.loc[s, "train"]) else f"{m.show(test[s])} at test")
    if not others:
        if len(top) == 1:
            return f"{top[0]} reaches {split(top[0])}"
        return (f"all {len(top)} schemes tie at {m.show(best)} test {m.words} ({_names(top)})")
    if len(top) == 1:
        text = f"best {top[0]}, {split(top[0])}"
    else:
        text = f"{_names(top)} tie at {m.show(best)} test {m.words}"
    shown_others = others[:3]
    if len(others) == 1:
        text += f"; {others[0]} differs: {split(others[0])}"
    else:
        text += "; the others differ: " + "; ".join(f"{s} {split(s)}" for s in shown_others)
    if len(others) > 3:
        text += f" (and {counted(len(others) - 3, 'more scheme')})"
    return text


def headline(runs: Sequence[RunRecord]) -> Headline:
    """The finding of a set of runs in numbers: per group, the schemes that tie at the best
    test number, named, and each scheme that differs with its train and test numbers; the
    train and test metric per scheme as bars (chance dashed, the paper's numbers marked) and
    the results beside the paper with deviations flagged."""
    frame = results_table(runs)
    flags = results_flags(runs, frame)
    mode = test_mode(runs)
    name = _metric(runs[0])
    m = metric(name)
    bars = _bar_frame(runs, mode)
    if bars.empty:
        return Headline(_not_scored(runs), None, Table("Results", _filled(frame)))
    wide = bars.pivot_table(index=["group", "scheme"], columns="split", values="value",
                            aggfunc="mean", sort=False)
    if "train" not in wide.columns:
        wide["train"] = float("nan")
    groups = ordered_unique(bars["group"])
    findings = []
    for g in groups[:4]:
        sub = wide.loc[g]
        sub = sub.loc[[s for s in ordered_unique(bars["scheme"]) if s in sub.index]]
        finding = _group_finding(sub, m, mode)
        findings.append(finding if g == "all runs" else f"{g}: {finding}")
    text = (f"{counted(len(runs), 'run')}, test {m.words} under {mode} inference: "
            + ". ".join(findings))
    if len(groups) > 4:
        text += f" (and {counted(len(groups) - 4, 'more group')} in the table)"
    chance = chance_level(runs[0])
    text += f" (chance {m.show(chance)})." if chance is not None else "."
    test_bars = bars[bars["split"] == "test"]
    n_paper = int(bars["paper"].notna().sum())
    if n_paper:
        text += (f" {deviate(len(flags), 'measured number')} from the paper or lie"
                 f"{'s' if len(flags) == 1 else ''} below chance"
                 " (flagged in the table)." if flags else
                 f" Every number with a paper value lies within {m.tolerance_words()} of it.")
    chart = BarPlot(bars, x="scheme", y="value", hue="split",
                    col="group" if len(groups) > 1 else None,
                    xlabel="scheme", ylabel=f"{m.words} ({m.unit})", chance=chance,
                    paper="paper" if n_paper else None, paper_bound="bound" if n_paper else None,
                    ylim=(0.0, 1.05) if m.percent else None)
    figure = Figure(f"Train and test {m.words} per scheme", chart,
                    _bar_caption(test_bars, mode, chance, n_paper))
    keep = [c for c in ("scheme", "group", "seed", "train", "paper train", f"test ({mode})",
                        "paper test") if c in frame.columns]
    short = frame[keep]
    shown = tuple(f for f in flags if f.column in keep)
    mean = test_bars.groupby(["scheme", "group"], sort=False)["value"].mean()
    worst = mean.idxmax() if m.lower_is_better else mean.idxmin()
    best = mean.idxmin() if m.lower_is_better else mean.idxmax()
    worst_rows = () if m.show(mean[worst]) == m.show(mean[best]) else tuple(
        i for i, r in enumerate(runs) if (r.label, r.group or "all runs") == worst)
    table = Table("Measured beside the paper" if n_paper else "Results", short,
                  _tolerance_text(runs) if n_paper else "", flags=shown, highlight=worst_rows)
    return Headline(text, figure, table)


def _seed_counts(frame: pd.DataFrame, by: str = "label") -> set[int]:
    if "seed" not in frame.columns or frame.empty:
        return {1}
    return set(frame.groupby(by)["seed"].nunique(dropna=False).tolist())


def _band_words(frame: pd.DataFrame, by: str = "label", unit: bool = False) -> str:
    seeds = _seed_counts(frame, by)
    units = unit and "unit" in frame.columns and frame["unit"].nunique() > 1
    if max(seeds) > 1:
        n = ", ".join(str(s) for s in sorted(seeds))
        return f"{n} seeds per scheme: lines are the mean with a 95% bootstrap band."
    if units:
        return "One run per scheme; lines are the mean over units with a 95% bootstrap band."
    return "One run per scheme (no band)."


def _bar_caption(bars: pd.DataFrame, mode: str, chance: float | None, n_paper: int) -> str:
    parts = ["Per scheme, train (the training split with masks on, or the last epoch's "
             f"training-mode metric) beside test (the test split, {mode_words(mode)})."]
    if chance is not None:
        parts.append(f"Dashed line: chance ({chance:g}).")
    if n_paper:
        parts.append("Black marks: the paper's number (a triangle for a bound such as '<').")
    n = bars.groupby(["scheme", "group"]).size().max()
    parts.append(f"{n} seeds per bar: the whisker is a 95% bootstrap interval." if n > 1
                 else "One run per bar.")
    return " ".join(parts)


def _curve_frame(runs: Sequence[RunRecord]) -> pd.DataFrame:
    rows = []
    for r in runs:
        for rec in r.metrics:
            for key, value in rec.items():
                if key in VOLATILE_KEYS or key == "valid_best" or not isinstance(value, (int, float)):
                    continue
                split, _, name = key.partition("_")
                if split in ("train", "valid") and name and name != "error":
                    rows.append({"label": r.label, "group": r.group, "step": rec.get("step"),
                                 "seed": r.seed, "split": split, "quantity": name,
                                 "value": float(value)})
    return pd.DataFrame(rows)


def _groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    if "group" not in frame.columns:
        return [("", frame)]
    return [(g, frame[frame["group"] == g]) for g in ordered_unique(frame["group"])]


def _titled(title: str, group: str) -> str:
    return f"{title} ({group})" if group else title


def training_curves(runs: Sequence[RunRecord]) -> list[Figure]:
    """Training-mode and validation metrics over steps, per group of runs."""
    frame = _curve_frame(runs)
    if frame.empty or frame["step"].isna().all():
        return []
    frame = frame.dropna(subset=["step"])
    frame["panel"] = frame["quantity"].map(lambda q: quantity(q).words)
    labels = {quantity(q).words: axis_label(q) for q in frame["quantity"].unique()}
    caption = ("Solid: training-mode metric (masks on, averaged over each epoch); dashed: "
               "validation. " + _band_words(frame))
    return [Figure(_titled("Training curves", g),
                   LinePlot(sub, x="step", hue="label", style="split", col="panel",
                            xlabel=x_axis("step"), panel_ylabels=labels, legend_title=None),
                   caption)
            for g, sub in _groups(frame)]


def training_sections(runs: Sequence[RunRecord]) -> list[Section]:
    curves = training_curves(runs)
    return [Section("Training", tuple(curves))] if curves else []


def probe_frame(runs: Sequence[RunRecord], probe: str) -> pd.DataFrame:
    """A probe's frames of every run, with ``label``, ``group``, ``run`` and ``seed``."""
    parts = []
    for r in runs:
        f = r.diagnostics.get(probe)
        if f is None or f.empty:
            continue
        f = f.copy()
        f["label"], f["group"], f["run"], f["seed"] = r.label, r.group, r.name, r.seed
        parts.append(f)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _by_x(frame: pd.DataFrame) -> tuple[list[tuple[str, pd.DataFrame]], pd.DataFrame]:
    """Split a probe frame into parts drawn over each x column (rows where it is set, in
    the order of :data:`X_COLUMNS`) and the rest (scalars, for a table)."""
    parts, rest = [], frame
    for c in X_COLUMNS:
        if c not in rest.columns or not pd.api.types.is_numeric_dtype(rest[c]):
            continue
        has = rest[c].notna()
        if has.any():
            parts.append((c, rest[has]))
            rest = rest[~has]
    return parts, rest


def _key_columns(frame: pd.DataFrame, x: str | None) -> list[str]:
    """Categorical columns that vary within one run (they must not be averaged over)."""
    keys = []
    for c in frame.columns:
        if c in _NOT_KEYS or c in X_COLUMNS or c.endswith("_std"):
            continue
        if pd.api.types.is_float_dtype(frame[c]) and frame[c].nunique(dropna=True) > 12:
            continue  # a measured number, not a setting
        if frame.groupby("run")[c].nunique(dropna=True).max() > 1:
            keys.append(c)
    return keys


_SETTING_WORDS = {"loss": {"last": "loss at the last step", "per-step": "loss at every step"},
                  "layer": None, "gate": None}


def _panel_text(row: dict, cols: list[str], own: dict[str, Quantity]) -> str:
    """A panel's title in words: the quantity's words, then the other facet settings."""
    parts = []
    for c in cols:
        v = row.get(c)
        if v is None or (isinstance(v, float) and pd.isna(v)) or str(v) == "":
            continue
        if c == "quantity":
            parts.append(quantity(str(v), own).words)
        elif isinstance(_SETTING_WORDS.get(c), dict):
            parts.append(_SETTING_WORDS[c].get(str(v), f"{c} {v}"))  # type: ignore[union-attr]
        elif c == "layer":
            parts.append(f"layer {int(float(v))}")
        else:
            parts.append(f"{c} {v}")
    return ", ".join(parts)


#: at most this many lines in one panel; more (schemes x inference modes) are drawn as small
#: multiples, a panel per scheme with a line per inference mode, on a shared y axis
MAX_LINES = 8
#: differences below this share of the values' size are floating-point noise, not signals
NOISE = 1e-6


def _same(a: float, b: float) -> bool:
    """Equal up to numerical noise (:data:`NOISE` relative)."""
    return abs(a - b) <= NOISE * max(abs(a), abs(b), 1e-12)


def _denoised(series: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """``series`` with each line's values snapped to their median (to 6 significant digits)
    where they all lie within :data:`NOISE` of it (e.g. a ratio of 1 +- 1e-7 for a scheme without dropout), and whether
    any panel was snapped."""
    out = series.copy()
    snapped = False
    keys = [c for c in ("panel", "label", "inference") if c in out.columns]
    for _, idx in out.groupby(keys, sort=False).groups.items():
        v = pd.to_numeric(out.loc[idx, "value"], errors="coerce")
        mid = float(f"{float(v.median()):.6g}") if v.notna().any() else float("nan")
        if v.notna().sum() > 1 and all(_same(float(x), mid) for x in v.dropna()) \
                and (v.dropna() != mid).any():
            out.loc[idx, "value"] = mid
            snapped = True
    return out, snapped


def _show(v: float) -> str:
    return f"{v:.3g}"


def probe_takeaway(words: "ProbeWords", frame: pd.DataFrame) -> str | None:
    """The probe's measured result in one sentence: its first declared quantity (in the
    probe's words) at the last point of its x axis, under the test-time inference mode,
    naming the schemes that differ from the rest with their numbers (and, where measured,
    the training-mode number beside it). ``None`` when nothing is drawn over an x axis."""
    parts, _ = _by_x(frame)
    if not parts:
        return None
    x, series = parts[0]
    if "quantity" in series.columns:
        series = series[~series["quantity"].isin(_NOT_DRAWN)]
        present = ordered_unique(series["quantity"].astype(str))
        if not present:
            return None
        lead = next((q for q in words.quantities if q in present), present[0])
        series = series[series["quantity"].astype(str) == lead]
        q = quantity(lead, words.quantities)
    else:
        q = Quantity(words.title, "as measured")
    if "group" in series.columns and series["group"].astype(bool).any():
        series = series[series["group"] == ordered_unique(series["group"])[0]]
    modes = ordered_unique(series["mode"].dropna().astype(str)) if "mode" in series else []
    mode = "deterministic" if "deterministic" in modes else (modes[0] if modes else None)
    train = None
    if mode is not None:
        if "train-mode" in modes and mode != "train-mode":
            train = series[series["mode"].astype(str) == "train-mode"]
        series = series[series["mode"].astype(str) == mode]
    for k in _key_columns(series, x):
        if k not in ("mode", "quantity"):
            first = ordered_unique(series[k].dropna())[:1]
            series = series[series[k].isin(first)]
            if train is not None:
                train = train[train[k].isin(first)]
    if series.empty:
        return None
    end = float(series.groupby("label")[x].max().min())
    at = series[series[x] == end].groupby("label", sort=False)["value"].mean().dropna()
    if at.empty:
        return None
    at_train = (train[train[x] == end].groupby("label", sort=False)["value"].mean()
                if train is not None and not train.empty else pd.Series(dtype=float))
    where = f"at {x_axis(x).split(' (')[0]} = {end:g}" + (
        f", {mode_words(mode).split(' (')[0]} inference" if mode else "")

    def val(s: str) -> str:
        t = at_train.get(s)
        return _show(at[s]) + ("" if t is None or pd.isna(t) or _same(t, at[s])
                               else f" (training mode {_show(t)})")

    clusters: dict[str, list[str]] = {}
    for s, v in at.items():
        key = next((k for k in clusters if _same(at[clusters[k][0]], v)
                    or _show(at[clusters[k][0]]) == _show(v)), _show(v))
        clusters.setdefault(key, []).append(str(s))
    head = f"Measured: {q.words} ({q.unit}) {where}"
    if len(at) == 1:
        s = at.index[0]
        return f"{head}: {val(s)} under {s}."
    if len(clusters) == 1:
        return f"{head}: {_show(at.iloc[0])} under every scheme ({_names(list(at.index))})."
    if len(clusters) == 2:
        small, big = sorted(clusters.values(), key=len)
        if len(small) == len(big):
            small, big = (small, big) if at[small[0]] < at[big[0]] else (big, small)
        return (f"{head}: {val(small[0]) if len(small) == 1 else _show(at[small[0]])} under "
                f"{_names(small)}, against {_show(at[big[0]])} under {_names(big)}.")
    lo, hi = at.idxmin(), at.idxmax()
    rest = at.drop([lo, hi])
    return (f"{head}: lowest under {lo}, {val(lo)}; highest under {hi}, {val(hi)}; the other "
            f"{counted(len(rest), 'scheme')} lie between (median {_show(float(rest.median()))}).")


def _probe_figures(words: "ProbeWords", series: pd.DataFrame, x: str) -> list[Figure]:
    series = series[~series.get("quantity", pd.Series("", index=series.index)).isin(_NOT_DRAWN)]
    if series.empty:
        return []
    series = series.copy()
    keys = _key_columns(series, x)
    style = None
    if "mode" in keys:
        series["inference"] = series["mode"].astype(str)
        style = "inference"
    facet_cols = [c for c in keys if c not in ("mode", "scaling")]
    if "quantity" in facet_cols:
        facet_cols.remove("quantity")
        facet_cols.insert(0, "quantity")
    elif "quantity" in series.columns:
        facet_cols.insert(0, "quantity")
    records = series[facet_cols].astype(object).to_dict("records") if facet_cols else []
    series["panel"] = [_panel_text(r, facet_cols, words.quantities) for r in records] \
        if facet_cols else words.name
    series, snapped = _denoised(series)
    ylabels = {}
    if "quantity" in series.columns:
        for panel, q in zip(series["panel"], series["quantity"].astype(str)):
            ylabels[str(panel)] = quantity(q, words.quantities).unit
    codes = ", ".join(ordered_unique(series["quantity"].astype(str))) \
        if "quantity" in series.columns else ""
    modes = ordered_unique(series["mode"].astype(str)) if "mode" in series.columns else []
    noise = (f" Differences below {NOISE:g} of a value are floating-point noise and drawn as "
             "zero." if snapped else "")
    what = words.title + ("" if x == "t" else f", over {x_axis(x).split(' (')[0]}")
    n_labels = series["label"].nunique()
    if style and n_labels * len(modes) > MAX_LINES:
        # small multiples: per panel quantity a figure, a panel per scheme, a line per mode
        caption = " ".join(p for p in (
            "A panel per scheme on a shared y axis; one colour per inference mode "
            f"({', '.join(modes)}).", _band_words(series, unit=True) + noise,
            f"Code names: {codes}." if codes else "") if p)
        figures = []
        for g, sub in _groups(series):
            for panel in ordered_unique(sub["panel"]):
                part = sub[sub["panel"] == panel]
                figures.append(Figure(
                    _titled(f"{what}: {panel}", g),
                    LinePlot(part, x=x, hue="inference", col="label", xlabel=x_axis(x),
                             ylabel=ylabels.get(str(panel)) or panel, col_wrap=4,
                             markers=x in ("length", "lag"), sharey=True,
                             legend_title="inference mode"),
                    caption))
        return figures
    caption = " ".join(p for p in (
        "One colour per scheme" + (f"; one dash per inference mode ({', '.join(modes)})."
                                   if style and len(modes) > 1 else
                                   f"; inference mode: {modes[0]}." if modes else "."),
        _band_words(series, unit=True) + noise,
        f"Code names: {codes}." if codes else "") if p)
    return [Figure(_titled(what, g),
                   LinePlot(sub, x=x, hue="label", style=style, col="panel", xlabel=x_axis(x),
                            panel_ylabels=ylabels, markers=x in ("length", "lag")),
                   caption)
            for g, sub in _groups(series)]


def _reliability_figures(frame: pd.DataFrame) -> list[Figure]:
    """Reliability diagrams: accuracy against mean confidence per bin, one panel per
    inference mode, bins with under :data:`MIN_BIN_SHARE` of the predictions left out."""
    if "quantity" not in frame.columns or "bin" not in frame.columns:
        return []
    rel = frame[frame["quantity"].isin(("reliability_confidence", "reliability_accuracy",
                                        "reliability_fraction")) & frame["bin"].notna()]
    if rel.empty:
        return []
    wide = rel.pivot_table(index=["run", "label", "group", "seed", "mode", "bin"],
                           columns="quantity", values="value", aggfunc="first").reset_index()
    need = {"reliability_confidence", "reliability_accuracy", "reliability_fraction"}
    if not need <= set(wide.columns):
        return []
    wide = wide[wide["reliability_fraction"] >= MIN_BIN_SHARE].dropna(
        subset=["reliability_confidence", "reliability_accuracy"])
    if wide.empty:
        return []
    wide["panel"] = wide["mode"].map(mode_words)
    caption = ("Accuracy against confidence per confidence bin: a calibrated net lies on the "
               f"dotted diagonal. Bins holding under {100 * MIN_BIN_SHARE:g}% of the "
               "predictions are left out. " + _band_words(wide))
    return [Figure(_titled("Reliability: accuracy against confidence", g),
                   LinePlot(sub, x="reliability_confidence", y="reliability_accuracy",
                            hue="label", col="panel", xlabel="confidence (probability)",
                            ylabel="accuracy (fraction correct)",
                            markers=True, diagonal=True),
                   caption)
            for g, sub in _groups(wide)]


def _scalar_table(scal: pd.DataFrame) -> pd.DataFrame | None:
    if scal.empty:
        return None
    always = ["group", "label", "mode", "quantity"]
    keys = [c for c in always + [k for k in _key_columns(scal, None) if k not in always]
            if c in scal.columns and (scal[c].notna() & (scal[c].astype(str) != "")).any()]
    table = (scal.groupby(keys, dropna=False, sort=False)["value"]
             .agg(["mean", "std", "count"]).reset_index())
    if table["count"].max() <= 1:
        table = table.drop(columns=["std", "count"]).rename(columns={"mean": "value"})
    else:
        table = table.rename(columns={"count": "n"})
    return table


@dataclass(frozen=True)
class ProbeWords:
    """A probe's words as the report shows them: ``title`` (its section heading),
    ``quantities`` (words and unit of each quantity), ``doc`` (its one-line description)
    and ``rank`` (where its section comes)."""

    name: str
    title: str
    quantities: dict[str, Quantity]
    doc: str = ""
    rank: int = 1000


def probe_words(runs: Sequence[RunRecord], name: str) -> ProbeWords:
    """The words of probe ``name``: those its JSON files carry (what the probe declared
    when it ran), else those of the registered probe class, else its code names."""
    from memloss.diagnostics import PROBES

    cls = PROBES.get(name) if name in PROBES else None
    declared = cls.words() if cls is not None else {"title": name, "quantities": {}}
    for r in runs:
        meta = r.probe_meta.get(name) or {}
        if meta.get("title") and isinstance(meta.get("quantities"), dict):
            declared = meta
            break
    quantities = {q: Quantity(str(w.get("words", q)), str(w.get("unit", "as measured")))
                  for q, w in declared["quantities"].items() if isinstance(w, dict)}
    return ProbeWords(name, str(declared["title"]), quantities,
                      PROBES.describe(name) if cls is not None else "",
                      cls.rank if cls is not None else 1000)


def probe_sections(runs: Sequence[RunRecord]) -> list[Section]:
    """One section per probe found in the runs' ``diagnostics/`` folders: its figures
    (probe quantities in the probe's own words, units on the axes); the raw rows go to the
    appendix."""
    found = list(dict.fromkeys(p for r in runs for p in r.diagnostics))
    words = {name: probe_words(runs, name) for name in found}
    sections = []
    for name in sorted(found, key=lambda n: words[n].rank):
        frame = probe_frame(runs, name)
        if frame.empty:
            continue
        doc = words[name].doc
        blocks: list = [Text(f"{doc} (probe {name!r}; every measured row is in the appendix, "
                             f"file {_probe_file(name)}.)" if doc else
                             f"Probe {name!r}; every measured row is in the appendix, file "
                             f"{_probe_file(name)}.")]
        takeaway = probe_takeaway(words[name], frame)
        if takeaway:
            blocks.insert(0, Text(takeaway))
        parts, _ = _by_x(frame)
        for x, part in parts:
            blocks += _probe_figures(words[name], part, x)
        blocks += _reliability_figures(frame)  # drawn for any probe writing reliability bins
        sections.append(Section(f"Probe: {words[name].title}", tuple(blocks)))
    return sections


def _probe_file(name: str) -> str:
    return f"probe-{name}.csv"


def results_sections(runs: Sequence[RunRecord]) -> list[Section]:
    """Every run's train and test numbers under each inference mode beside the paper; none
    where no run has a number to show (the headline's table already lists the runs)."""
    if _bar_frame(runs, test_mode(runs)).empty:
        return []
    frame = results_table(runs)
    flags = results_flags(runs, frame)
    text = Text(f"{counted(len(runs), 'run')}. Test numbers are on the task's test split under each "
                "inference mode of final.json; 'train' is the training split scored with masks "
                "on (train-mode) where the run scored it, else the last epoch's training-mode "
                "metric. Paper numbers come from the paper row the run's config.json records.")
    caption = _tolerance_text(runs) if "paper test" in frame.columns else ""
    shown = frame if flags else _filled(frame)
    return [Section("Results", (text, Table("Every run", shown, caption, flags=flags)))]


def _filled(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns holding at least one value (an imported or unscored run has no train
    number: an empty column says nothing)."""
    return frame.dropna(axis=1, how="all")


def data_sections(runs: Sequence[RunRecord]) -> list[Section]:
    """The raw tables as CSV files beside the report: the results and each probe's rows."""
    blocks: list = [Attachment("Results of every run", "results.csv", results_table(runs),
                               "one row per run: train and test numbers, paper numbers")]
    for name in dict.fromkeys(p for r in runs for p in r.diagnostics):
        frame = probe_frame(runs, name)
        if frame.empty:
            continue
        _, scalars = _by_x(frame)
        table = _scalar_table(scalars)
        rows = f"{len(frame)} rows" + (f"; fitted and summary values: {len(table)} rows"
                                       if table is not None else "")
        blocks.append(Attachment(f"Probe {name}", _probe_file(name),
                                 frame.drop(columns=["scheme"], errors="ignore"),
                                 f"every measured row ({rows}); columns as in "
                                 "docs/diagnostics.md, plus label, group, run and seed"))
    return [Section("Data files", tuple(blocks), appendix=True)]


def _imported(run: RunRecord) -> bool:
    return bool(run.final.get("imported") or (run.config.get("info") or {}).get("imported"))


#: net settings that only initialise weights: an imported run's weights came with it
_INITIALISING = ("init_range", "forget_bias")


def _clean(run: RunRecord) -> dict:
    """The run's settings that applied: for an imported run (nothing trained) only the task
    and the net, not the training settings its config.json holds as defaults."""
    train = run.train
    if _imported(run):
        train = {k: v for k, v in train.items() if k in ("task", "task_params", "net")}
        return {k: v for k, v in flat_config(train).items()
                if k not in VOLATILE_KEYS and k not in _INITIALISING}
    flat = {k: v for k, v in flat_config(train).items() if k not in VOLATILE_KEYS}
    return {**flat, "seed": train.get("seed")}


def settings_sections(runs: Sequence[RunRecord]) -> list[Section]:
    """The runs' settings: those all runs share once, those that differ per run; the full
    config.json stays in each run directory."""
    flats = [_clean(r) for r in runs]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    shared = [k for k in keys if len({repr(f.get(k)) for f in flats}) == 1]
    differ = [k for k in keys if k not in shared]
    common = pd.DataFrame({"setting": shared, "value": [flats[0].get(k) for k in shared]})
    n_imported = sum(_imported(r) for r in runs)
    imported = (f" {counted(n_imported, 'run')} imported (nothing trained): only the task and "
                "net settings apply to " + ("it" if n_imported == 1 else "them") + "."
                if n_imported else "")
    blocks: list = [Text("Settings of the runs (config.json's 'train' section, net fields by "
                         f"their plain names).{imported} The full config.json of each run is in "
                         "its run "
                         "directory: " + ", ".join(str(r.path) for r in runs[:3])
                         + (", ..." if len(runs) > 3 else "") + "."),
                    Table("Shared by every run", common)]
    if differ:
        per = pd.DataFrame([{"run": r.name, **{k: f.get(k) for k in differ}}
                            for r, f in zip(runs, flats)])
        blocks.append(Table("Different between runs", per))
    return [Section("Settings", tuple(blocks), appendix=True)]


#: the body of a report, in order: a name and a builder from the labelled runs to sections.
#: A new section is one entry here (the collected summary beside the paper, per paper table
#: and over seeds, follows ``"results"``); :func:`describe_runs` can skip entries by name.
BODY: tuple[tuple[str, SectionBuilder], ...] = (
    ("results", results_sections),
    ("paper-tables", paper_table_sections),
    ("training", training_sections),
    ("probes", probe_sections),
)
#: the appendix, after the body
APPENDIX: tuple[tuple[str, SectionBuilder], ...] = (
    ("data", data_sections),
    ("settings", settings_sections),
)


def describe_runs(runs: Sequence[RunRecord], *, skip: Sequence[str] = (),
                  extra: Sequence[tuple[str, SectionBuilder]] = ()) -> list[Section]:
    """The body and appendix sections for a set of labelled runs: :data:`BODY` (then
    ``extra`` builders, in order), then :data:`APPENDIX`, leaving out the names in
    ``skip``."""
    known = {n for n, _ in BODY + APPENDIX + tuple(extra)}
    unknown = sorted(set(skip) - known)
    if unknown:
        raise ValueError(f"unknown report sections {unknown}; known: {sorted(known)}")
    sections: list[Section] = []
    for name, build in tuple(BODY) + tuple(extra) + tuple(APPENDIX):
        if name not in skip:
            sections += build(runs)
    return sections
