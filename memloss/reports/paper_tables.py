"""Measured beside the paper: each table row's runs summarised over seeds, with the paper's
number, whether it lies inside the 95% confidence interval, and the rank agreement per table.

Runs are grouped by the paper row their ``config.json["info"]["preset"]`` records (the preset
they reproduce; a ``-cpu`` variant is a row of its own). For every number the paper reports
for that row (``train``, ``valid``, ``test``, ``test_mc``), the measured counterpart is:

* ``test``: the test split under the deterministic inference mode (final.json);
* ``test_mc``: the test split under MC dropout (final.json);
* ``valid``: the validation score of the weights final.json was computed with;
* ``train``: the training split scored after training when the run recorded it
  (``final.json["train"]``, the demo does), else the running training-mode value over the
  last epoch (metrics.jsonl).

Over the seeds: mean, sample standard deviation, and the 95% interval of the mean from
Student's t (``scipy.stats.t.interval``; a row with one seed has no interval). A reported
bound (``<0.25``) counts as inside when the interval reaches below it. Per table, Kendall's
tau (``scipy.stats.kendalltau``, tau-b, ties allowed) compares the paper's ordering of the
rows with the measured means' ordering; a bound ranks strictly beyond its number ("<0.25"
below every row at 0.25).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from .document import Figure, Section, Table, Text
from .runs import RunRecord
from .style import report_style

__all__ = ["SPLITS", "measured", "paper_measurements", "summarize", "rank_agreement",
           "paper_table_sections", "IntervalPlot", "CONFIDENCE", "SPLIT_WORDS"]

#: the paper's keys this module knows how to measure
SPLITS = ("train", "valid", "test", "test_mc")
CONFIDENCE = 0.95
_GROUP = ["paper", "table", "cpu", "preset", "row", "metric", "split"]


def _last(records: Sequence[dict], key: str, step: Any = None) -> float | None:
    for rec in reversed(records):
        if key in rec and (step is None or rec.get("step") == step):
            return float(rec[key])
    return None


def measured(run: RunRecord, split: str, metric: str) -> float | None:
    """The run's counterpart of the paper's ``split`` number (see the module doc), or None."""
    final = run.final or {}
    tests = final.get("test") or {}
    if split in ("test", "test_mc"):
        value = (tests.get("deterministic" if split == "test" else "mc") or {}).get(metric)
        return None if value is None else float(value)
    if split == "valid":
        return (_last(run.metrics, f"valid_{metric}", final.get("weights_step"))
                or _last(run.metrics, f"valid_{metric}"))
    if split == "train":
        scored = (final.get("train") or {}).get("deterministic") or {}
        if metric in scored:
            return float(scored[metric])
        return _last(run.metrics, f"train_{metric}")
    return None


def _preset(run: RunRecord) -> dict | None:
    info = run.config.get("info")
    rec = info.get("preset") if isinstance(info, dict) else None
    if isinstance(rec, dict) and isinstance(rec.get("reported"), dict) and rec.get("table"):
        return rec
    return None


def paper_measurements(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """Long table: one row per (run, reported number) with the measured value beside it."""
    rows = []
    for run in runs:
        rec = _preset(run)
        if rec is None or not run.final:
            continue
        metric = str(rec.get("metric", ""))
        for split, reported in rec["reported"].items():
            if split not in SPLITS:
                continue
            value = measured(run, split, metric)
            rows.append({"paper": str(rec.get("paper", "")), "table": str(rec["table"]),
                         "cpu": rec.get("cpu_of") is not None, "preset": str(rec.get("name", "")),
                         "row": str(rec.get("row", "")), "metric": metric, "split": split,
                         "run": run.name, "seed": run.seed,
                         "commit": str(run.config.get("commit") or ""),
                         "value": np.nan if value is None else value,
                         "reported": float(reported),
                         "bound": str((rec.get("bounds") or {}).get(split, ""))})
    return pd.DataFrame(rows, columns=[*_GROUP, "run", "seed", "commit", "value", "reported",
                                       "bound"])


def _interval(values: np.ndarray) -> tuple[float, float, float, float]:
    """``(mean, sd, low, high)`` of the mean at :data:`CONFIDENCE` (t distribution)."""
    n = values.size
    mean = float(values.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(values.std(ddof=1))
    if sd == 0.0:
        return mean, 0.0, mean, mean
    low, high = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=sd / math.sqrt(n))
    return mean, sd, float(low), float(high)


def _inside(reported: float, bound: str, low: float, high: float) -> bool | None:
    if math.isnan(low):
        return None
    if bound == "<":
        return low < reported
    if bound == ">":
        return high > reported
    return low <= reported <= high


def summarize(long: pd.DataFrame) -> pd.DataFrame:
    """Per (paper, table, row, split): seeds, mean, sd, 95% interval, the paper's number
    (``reported``, with ``bound``) and whether it lies inside the interval."""
    out = []
    for key, group in long.groupby(_GROUP, sort=False, dropna=False):
        values = group["value"].dropna().to_numpy(float)
        mean, sd, low, high = _interval(values)
        reported, bound = float(group["reported"].iloc[0]), str(group["bound"].iloc[0])
        out.append({**dict(zip(_GROUP, key)), "seeds": int(values.size), "mean": mean, "sd": sd,
                    "ci_low": low, "ci_high": high, "reported": reported, "bound": bound,
                    "inside": _inside(reported, bound, low, high)})
    return pd.DataFrame(out, columns=[*_GROUP, "seeds", "mean", "sd", "ci_low", "ci_high",
                                      "reported", "bound", "inside"])


def _as_stated(rows: pd.DataFrame) -> np.ndarray:
    """The paper's numbers ranked as the paper states them: a bound is strictly beyond its
    number ("<0.25" ranks below every 0.25, not tied with them)."""
    reported = rows["reported"].to_numpy(float)
    bounds = rows["bound"].astype(str).to_numpy()
    out = reported.copy()
    out[bounds == "<"] = np.nextafter(reported[bounds == "<"], -np.inf)
    out[bounds == ">"] = np.nextafter(reported[bounds == ">"], np.inf)
    return out


def rank_agreement(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (paper, table, size, split): Kendall's tau between the paper's numbers and the
    measured means over the table's rows (NaN when either side is constant or fewer than
    two rows were measured)."""
    out = []
    for key, group in summary.groupby(["paper", "table", "cpu", "split"], sort=False):
        g = group.dropna(subset=["mean"])
        tau = p = math.nan
        if len(g) >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # constant input: tau is undefined (NaN)
                res = stats.kendalltau(_as_stated(g), g["mean"].to_numpy(float))
            tau, p = float(res.statistic), float(res.pvalue)
        out.append({**dict(zip(["paper", "table", "cpu", "split"], key)), "rows": len(g),
                    "kendall_tau": tau, "p_value": p})
    return pd.DataFrame(out, columns=["paper", "table", "cpu", "split", "rows", "kendall_tau",
                                      "p_value"])


#: the paper's keys in words (panel titles)
SPLIT_WORDS = {"train": "train", "valid": "validation", "test": "test (deterministic)",
               "test_mc": "test (MC dropout)"}
_UNITS = {"accuracy": "accuracy (fraction)", "error": "error rate (fraction)",
          "perplexity": "perplexity", "bpc": "bits per character"}


@dataclass(frozen=True)
class IntervalPlot:
    """One panel per split: each row's measured mean with its 95% interval (bar) and the
    paper's number (cross; a bound is drawn as a triangle pointing its way)."""

    summary: pd.DataFrame
    metric: str

    def __post_init__(self) -> None:
        if self.summary.empty:
            raise ValueError("IntervalPlot: the summary is empty; nothing to draw")

    def __call__(self) -> "plt.Figure":
        splits = list(dict.fromkeys(self.summary["split"]))
        rows = list(dict.fromkeys(self.summary["row"]))
        with report_style():
            fig, axes = plt.subplots(1, len(splits), figsize=(3.8 * len(splits) + 2.5,
                                                              0.38 * len(rows) + 1.3),
                                     squeeze=False, sharey=True)
            for ax, split in zip(axes[0], splits):
                sub = self.summary[self.summary["split"] == split]
                y = np.array([rows.index(r) for r in sub["row"]], dtype=float)
                mean = sub["mean"].to_numpy(float)
                low = np.where(np.isnan(sub["ci_low"].to_numpy(float)), mean, sub["ci_low"])
                high = np.where(np.isnan(sub["ci_high"].to_numpy(float)), mean, sub["ci_high"])
                ax.errorbar(mean, y, xerr=[mean - low, high - mean], fmt="o", color="tab:blue",
                            capsize=3, markersize=4, label="measured mean, 95% interval")
                markers = ["<" if b == "<" else ">" if b == ">" else "x" for b in sub["bound"]]
                for m in dict.fromkeys(markers):
                    pick = np.array(markers) == m
                    ax.scatter(sub["reported"].to_numpy(float)[pick], y[pick] + 0.18, marker=m,
                               color="tab:red", s=22,
                               label="paper" + ("" if m == "x" else f" (bound {m})"))
                ax.set_title(SPLIT_WORDS.get(split, split))
                ax.set_xlabel(_UNITS.get(self.metric, self.metric))
                ax.set_yticks(range(len(rows)), [str(r) for r in rows])
            axes[0][0].invert_yaxis()  # the first row on top (the panels share the axis)
            axes[0][0].set_ylabel("table row")
            handles, labels = axes[0][-1].get_legend_handles_labels()
            fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                       ncol=3, frameon=False)
            fig.tight_layout()
        return fig


def _fmt(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def paper_table_sections(runs: Sequence[RunRecord]) -> list[Section]:
    """One "measured beside the paper" section per paper table the runs reproduce."""
    summary = summarize(paper_measurements(runs))
    if summary.empty:
        return []
    agreement = rank_agreement(summary)
    sections = []
    for (paper, table, cpu), group in summary.groupby(["paper", "table", "cpu"], sort=False):
        author = str(paper).split(",")[0]
        title = f"{author} {table}{' (CPU-sized)' if cpu else ''}: measured beside the paper"
        taus = agreement[(agreement["paper"] == paper) & (agreement["table"] == table)
                         & (agreement["cpu"] == cpu)]
        tau_text = "; ".join(f"{r.split}: tau = {_fmt(r.kendall_tau)} over {r.rows} rows"
                             for r in taus.itertuples())
        text = (f"{paper}, {table}. Each row: the mean over seeds, the sample standard deviation "
                f"and the {CONFIDENCE:.0%} confidence interval of the mean (Student's t), beside "
                "the number the paper reports; 'inside' says whether that number lies within "
                "the interval. Rank agreement between the paper's ordering of the rows and the "
                f"measured one (Kendall's tau-b): {tau_text}.")
        if cpu:
            text += (" These are CPU-sized variants of the paper's setups: their numbers are not "
                     "expected to match the paper's.")
        shown = group.assign(**{c: group[c].map(_fmt) for c in
                                ("mean", "sd", "ci_low", "ci_high")})
        shown["paper"] = [f"{b}{p:g}" for b, p in zip(group["bound"], group["reported"])]
        shown["inside"] = group["inside"].map({True: "yes", False: "no"}).fillna("")
        frame = shown[["row", "split", "metric", "seeds", "mean", "sd", "ci_low", "ci_high",
                       "paper", "inside"]].reset_index(drop=True)
        metric = str(group["metric"].iloc[0])
        sections.append(Section(title, (
            Text(text), Table(f"{author} {table}: measured and reported", frame),
            Figure(f"{author} {table}: 95% intervals and the paper's numbers",
                   IntervalPlot(group.reset_index(drop=True), metric)))))
    return sections
