"""Describe runs as a :class:`~memloss.reports.document.Report`: tables and plot descriptions.

Nothing is drawn here. The report has a results table (test metric under every inference
mode, the last training-mode metric, and the paper's numbers where a preset matches),
training curves, one section per probe (one figure comparing the schemes, per group of
runs, and a table of the probe's fitted scalars), and the runs' configs.
"""
from __future__ import annotations

import json
from typing import Sequence

import pandas as pd

from .document import Code, Figure, Section, Table, Text
from .paper import paper_row, paper_value
from .plots import LinePlot, ordered_unique
from .runs import VOLATILE_KEYS, RunRecord

__all__ = ["results_table", "training_curves", "probe_sections", "config_section",
           "describe_runs", "probe_frame", "X_COLUMNS"]

#: numeric columns a probe may be drawn over, in order of preference
X_COLUMNS = ("t", "length", "lag", "k", "bin")
#: probe columns that never define a curve (per-run constants, spreads, replicate indices
#: such as the unit, which are averaged with a band)
_NOT_KEYS = ("probe", "scheme", "cell", "value", "std", "run", "label", "group", "seed", "unit",
             "samples", "t0", "perturb")


def _metric(run: RunRecord) -> str:
    return str(run.final.get("metric") or "accuracy")


def results_table(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run: its label, group, seed, training-mode and test metrics, and the
    paper's reported train/test numbers where a preset matches."""
    modes = list(dict.fromkeys(m for r in runs for m in (r.final.get("test") or {})))
    rows = []
    for r in runs:
        metric = _metric(r)
        last = next((m for m in reversed(r.metrics) if f"train_{metric}" in m), {})
        preset = paper_row(r.config)
        row: dict[str, object] = {"run": r.name, "group": r.group, "scheme": r.label,
                                  "seed": r.seed, "metric": metric,
                                  "train (train-mode)": last.get(f"train_{metric}")}
        for mode in modes:
            row[f"test ({mode})"] = (r.final.get("test") or {}).get(mode, {}).get(metric)
        row["paper train"] = paper_value(preset, "train")
        row["paper test"] = paper_value(preset, "test")
        row["preset"] = "" if preset is None else preset.name
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame["group"].astype(bool).any():
        frame = frame.drop(columns="group")
    if not frame["preset"].astype(bool).any():
        frame = frame.drop(columns=["paper train", "paper test", "preset"])
    return frame


def _curve_frame(runs: Sequence[RunRecord]) -> pd.DataFrame:
    rows = []
    for r in runs:
        for rec in r.metrics:
            for key, value in rec.items():
                if key in VOLATILE_KEYS or key == "valid_best" or not isinstance(value, (int, float)):
                    continue
                split, _, name = key.partition("_")
                if split in ("train", "valid") and name:
                    rows.append({"label": r.label, "group": r.group, "step": rec.get("step"),
                                 "split": split, "quantity": name, "value": float(value)})
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
    return [Figure(_titled("Training curves", g),
                   LinePlot(sub, x="step", hue="label", style="split", col="quantity"),
                   "Training-mode metrics (masks on, averaged over each epoch) and validation "
                   "metrics; several seeds give the mean and a 95% band.")
            for g, sub in _groups(frame)]


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


def _join(frame: pd.DataFrame, cols: list[str]) -> pd.Series:
    """One text per row from several key columns: ``"grad_h | loss=last"``, skipping blanks."""
    def text(row: tuple) -> str:
        parts = []
        for c, v in zip(cols, row):
            if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA or str(v) == "":
                continue
            parts.append(f"{c}={v}" if c in ("layer", "loss") else str(v))
        return " | ".join(parts)
    return pd.Series([text(r) for r in frame[cols].astype(object).itertuples(index=False)],
                     index=frame.index, dtype=object)


def _probe_figures(name: str, series: pd.DataFrame, x: str, caption: str) -> list[Figure]:
    series = series.copy()
    keys = _key_columns(series, x)
    # the dash is the inference mode; the scaling column follows from it (other-scaling)
    style_cols = [c for c in ("mode",) if c in keys]
    facet_cols = [c for c in keys if c not in ("mode", "scaling")]
    if "quantity" in facet_cols:
        facet_cols.remove("quantity")
        facet_cols.insert(0, "quantity")
    series["panel"] = _join(series, facet_cols) if facet_cols else name
    style = None
    if style_cols:
        series["inference"] = series["mode"].astype(str)
        style = "inference"
    what = f"{name}, schemes compared" + ("" if x == "t" else f", over {x}")
    return [Figure(_titled(what, g), LinePlot(sub, x=x, hue="label", style=style, col="panel"),
                   caption)
            for g, sub in _groups(series)]


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


def probe_sections(runs: Sequence[RunRecord]) -> list[Section]:
    """One section per probe found in the runs' ``diagnostics/`` folders."""
    names = list(dict.fromkeys(p for r in runs for p in r.diagnostics))
    sections = []
    for name in names:
        frame = probe_frame(runs, name)
        if frame.empty:
            continue
        doc = _probe_doc(name)
        blocks: list = [Text(doc)] if doc else []
        parts, scalars = _by_x(frame)
        caption = (f"Probe {name!r}: one colour per scheme, one dash per inference mode; "
                   "replicates (seeds, units) give the mean and a 95% band.")
        for x, part in parts:
            blocks += _probe_figures(name, part, x, caption)
        table = _scalar_table(scalars)
        if table is not None:
            blocks.append(Table(f"{name}: fitted and summary values", table))
        if blocks:
            sections.append(Section(f"Probe: {name}", tuple(blocks)))
    return sections


def _probe_doc(name: str) -> str:
    try:
        from memloss.diagnostics import PROBES
    except ImportError:
        return ""
    return PROBES.describe(name) if name in PROBES else ""


def _clean(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in VOLATILE_KEYS}


def config_section(runs: Sequence[RunRecord]) -> Section:
    """Each run's resolved config (train, net, task info), without times and versions."""
    blocks = [Code(f"{r.name}: {r.label}" + (f" ({r.group})" if r.group else ""),
                   json.dumps(_clean(r.config), indent=2, sort_keys=True)) for r in runs]
    return Section("Configs", tuple(blocks))


def describe_runs(runs: Sequence[RunRecord]) -> list[Section]:
    """The standard sections for a set of labelled runs."""
    results = results_table(runs)
    summary = [Text(f"{len(runs)} run(s). Test metrics are on the task's test split under each "
                    "inference mode of final.json; 'train (train-mode)' is the last epoch's "
                    "training-mode metric (masks on). Paper numbers come from the matching "
                    "paper row its config.json records, where there is one."),
               Table("Results", results)]
    sections = [Section("Results", tuple(summary))]
    curves = training_curves(runs)
    if curves:
        sections.append(Section("Training", tuple(curves)))
    sections += probe_sections(runs)
    sections.append(config_section(runs))
    return sections
