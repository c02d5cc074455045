"""Every grid's cross-seed summary, for any set of runs (not only a paper's presets).

:func:`grid_keys` finds the settings a set of runs varies (the ``train.*`` columns of
:func:`memloss.collect.runs_frame` that differ between finished runs, the seed and the
settings that do not change a result left out). :func:`grid_summary` groups the finished
runs by them and gives, per group and metric, the number of seeds, the mean, the standard
deviation and the 95% interval of the mean (Student's t, as the paper summary's,
:func:`memloss.reports.paper_tables.summarize`). :func:`paired_comparisons` compares every
two settings on the seeds both ran: the mean difference ``a - b`` with its 95% interval and
the paired t-test (``t = mean(d) / (sd(d) / sqrt(n))`` over the n seed pairs' differences
``d``, the two-sided p-value from Student's t with n - 1 degrees of freedom, as
``scipy.stats.ttest_rel``); the seed pairs the comparison, so the variation between seeds
that both settings share cancels.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import fields

import pandas as pd
from scipy import stats

from memloss.models.schemes import Stack, parse_scheme

from .paper_tables import _interval

__all__ = ["GridSummary", "grid_keys", "metric_columns", "grid_summary", "paired_comparisons",
           "setting_label", "IGNORED"]

#: run settings that do not change a result (or are the replicate itself): never grid keys
IGNORED = ("train.seed", "train.progress", "train.threads", "train.hooks", "train.device",
           "train.eval_batch_size")
_METRIC_PREFIXES = ("test.", "train_split.")


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["finished"].astype(bool)] if "finished" in runs else runs


def _text(v: object) -> str:
    return "none" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def grid_keys(runs: pd.DataFrame) -> list[str]:
    """The ``train.*`` columns whose value differs between the finished runs (a missing value
    counts as a value of its own), :data:`IGNORED` left out, in column order."""
    done = _finished(runs)
    return [c for c in done.columns if c.startswith("train.") and c not in IGNORED
            and done[c].map(_text).nunique() > 1]


def metric_columns(runs: pd.DataFrame) -> list[str]:
    """The measured numbers: every final metric under every inference mode (``test.*``,
    ``train_split.*``) and the best validation score, where some finished run has one."""
    done = _finished(runs)
    cols = [c for c in done.columns if c.startswith(_METRIC_PREFIXES)] + \
        [c for c in ("final.best_valid",) if c in done.columns]
    return [c for c in cols if pd.to_numeric(done[c], errors="coerce").notna().any()]


def _short_scheme(text: str) -> str:
    """A scheme's text with only the parameters that differ from their defaults
    (``gal:p=0.3`` for ``gal:p=0.3,p_recurrent=0.25,...``); other text as it is."""
    try:
        scheme = parse_scheme(text)
    except ValueError:
        return text
    parts = []
    for part in scheme.schemes if isinstance(scheme, Stack) else (scheme,):
        args = ",".join(f"{f.name}={getattr(part, f.name)}" for f in fields(part)
                        if getattr(part, f.name) != f.default)
        parts.append(f"{part.name}:{args}" if args else part.name)
    return "+".join(parts) or "none"


def setting_label(keys: list[str], values: tuple) -> str:
    """``lr=0.1, net.scheme=gal:p=0.3``: a group's settings, without the ``train.`` prefix
    (a scheme with only its parameters that differ from their defaults)."""
    return ", ".join(f"{k.removeprefix('train.')}="
                     f"{_short_scheme(_text(v)) if k.endswith('.scheme') else _text(v)}"
                     for k, v in zip(keys, values)) or "all runs"


def _groups(runs: pd.DataFrame, keys: list[str]):
    done = _finished(runs)
    if not keys:
        yield (), done
        return
    labels = done[keys].apply(lambda col: col.map(_text))
    for values, part in labels.groupby(keys, sort=False):
        yield tuple(values), done.loc[part.index]


def grid_summary(runs: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """Per group of ``keys`` (default :func:`grid_keys`) and metric: ``seeds``, ``mean``,
    ``sd`` and the 95% interval ``ci_low``-``ci_high`` (NaN below two seeds)."""
    keys = grid_keys(runs) if keys is None else keys
    rows = []
    for values, group in _groups(runs, keys):
        for metric in metric_columns(runs):
            x = pd.to_numeric(group[metric], errors="coerce").dropna().to_numpy(float)
            if not x.size:
                continue
            mean, sd, low, high = _interval(x)
            rows.append({**dict(zip(keys, values)), "setting": setting_label(keys, values),
                         "metric": metric, "seeds": int(x.size), "mean": mean, "sd": sd,
                         "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=[*keys, "setting", "metric", "seeds", "mean", "sd",
                                       "ci_low", "ci_high"])


def paired_comparisons(runs: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """Every two settings of ``keys`` per metric, paired by seed: ``pairs`` (seeds both
    ran), ``mean_diff`` (``a - b``), its 95% interval, ``t`` and the two-sided ``p_value`` of
    the paired t-test (NaN below two pairs; p = 1 when every difference is 0, and 0 when
    every difference is the same other number)."""
    keys = grid_keys(runs) if keys is None else keys
    groups = [(setting_label(keys, v), g) for v, g in _groups(runs, keys)]
    rows = []
    for metric in metric_columns(runs):
        by_seed = [(label, pd.to_numeric(g[metric], errors="coerce").groupby(g["seed"]).mean()
                    .dropna()) for label, g in groups]
        for (a, xa), (b, xb) in itertools.combinations(by_seed, 2):
            seeds = xa.index.intersection(xb.index)
            d = (xa[seeds] - xb[seeds]).to_numpy(float)
            mean, sd, low, high = _interval(d)
            t, p = math.nan, math.nan
            if d.size >= 2:
                if sd == 0:  # every pair differs by the same amount
                    t, p = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
                else:
                    t = mean / (sd / math.sqrt(d.size))
                    p = float(2 * stats.t.sf(abs(t), d.size - 1))
            rows.append({"metric": metric, "a": a, "b": b, "pairs": int(d.size),
                         "mean_diff": mean, "ci_low": low, "ci_high": high, "t": t,
                         "p_value": p, "test": "paired t"})
    return pd.DataFrame(rows, columns=["metric", "a", "b", "pairs", "mean_diff", "ci_low",
                                       "ci_high", "t", "p_value", "test"])


class GridSummary:
    """A set of runs' grid: the ``keys`` it varies, the per-setting ``summary`` and the
    ``paired`` comparisons between settings."""

    def __init__(self, runs: pd.DataFrame) -> None:
        self.keys = grid_keys(runs)
        self.summary = grid_summary(runs, self.keys)
        self.paired = paired_comparisons(runs, self.keys)
