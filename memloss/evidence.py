"""A verdict per finding, by a stated rule: reproduced, contradicted, or not tested (why).

The findings are :data:`memloss.presets.findings.FINDINGS`. The input is one value per
(row, split, seed) (:func:`results_frame` reads it from run directories: the test score of
the weights the paper scores, :func:`memloss.reports.paper_tables.measured`), the
validation curve of every (row, seed), and the trivial baseline of each row's data
(:mod:`memloss.tasks.baselines`: the unigram model or the majority class, on the same
split). A run that stopped on a non-finite loss, gradient or weights
(:class:`~memloss.training.trainer.NonFiniteError`, recorded by a sweep in
``DIR/.sweep/errors/NAME.json``: :func:`diverged_runs`) is a measured outcome too: its
(row, seed) is *diverged*, with where it diverged, and no value on any split. The rule
(:func:`verdict`), for one finding at one size (full or CPU):

0. **A diverged run ranks below every finite run of its metric** (an infinite loss): worse
   than any finite score, tied with another diverged run. Semeniuta et al. 2016 (Section 3,
   Eq. 18) predict it for dropout on the hidden state with inverted scaling (``mask * x /
   p`` in training): "exponentially increasing values of hidden states during training".
1. **Tested only where the regime can show it** (else "not tested", every reason given):
   every compared row has runs, finite or diverged ("no runs of ROW" only when it has
   neither); every comparison pairs at least :data:`MIN_SEEDS` seeds (seed ``s`` of one row
   with seed ``s`` of the other, diverged seeds included); a ``better`` comparison whose two
   rows both diverged in every paired seed is not tested ("both diverged"); a ``similar``,
   ``below`` or ``above`` comparison of a row with diverged seeds is not tested ("ROW
   diverged in k of n seeds: where": a non-finite score is neither alike another nor on
   one side of a number); every compared row but those the paper says fail (``may_fail``)
   beats the trivial baseline in the mean of its finite seeds (a row whose every seed
   diverged is judged by its comparisons instead); and every baseline row of the finding
   overfits in every seed: it diverged in none, its validation curve (:func:`curve_quantity`:
   the metric where it is a function of the loss, as perplexity and bpc are; else the
   validation loss, since a classifier's error can keep falling while its loss rises) has
   at least 3 evaluations, its minimum is not the last one, and the last is worse than the
   minimum by more than :data:`MIN_RISE` (relative); and, for a finding about network sizes
   (``Finding.sizes``), the two rows of each comparison train networks of different sizes
   at this size (layers x units of their presets). Where a finding declares its CPU sample
   (``Finding.cpu_seeds``: seeds fixed before they ran, read alone), its compared rows are
   read on those seeds only, and every one of them must have run (finite or diverged).
2. **Each comparison**, on the paired differences ``d_s`` (positive: ``a`` better, in the
   metric's direction): the two-sided paired t-test (``scipy.stats.ttest_rel``; against
   the number for ``below``/``above``, ``scipy.stats.ttest_1samp``) and the
   :data:`CONFIDENCE` interval of the mean difference (Student's t). ``better``: holds when
   the interval lies above 0 (p < 0.05 and the mean difference positive), fails when it
   lies below 0, and fails too when it lies within ``+-m`` (the two rows score alike: a
   difference in ``a``'s favour as large as ``m`` is ruled out, as is one against it), else
   undecided; ``m`` is the finding's ``margin`` times the rows' mean, and no more than the
   difference the paper reports between the two rows (its numbers, relative to their mean)
   where it reports both, so that a difference the paper itself calls a win is never called
   alike. ``similar``: holds when the interval lies within ``+-margin`` of the rows' mean,
   fails when it lies outside it, else undecided.
   ``below`` / ``above`` (a bound of the paper, strict: "<25%" is below 0.25, not equal):
   the interval of the row's mean lies below / above the number. Identical differences in
   every seed have no spread: their interval is that one value. A ``better`` comparison in
   which either row diverged in a paired seed has no finite differences: it is decided by
   the exact two-sided sign test over the paired seeds instead (``scipy.stats.binomtest``,
   each pair won by the better of its two seeds under step 0, tied pairs left out): holds
   when p < :data:`ALPHA` and ``a`` wins more pairs, fails when p < :data:`ALPHA` and ``b``
   does, else undecided. Two-sided, as the t-test's interval is, so each direction is
   decided at 2.5%: a row that diverged in every one of ``n`` seeds against one that never
   did gives p = 2 * 0.5 ** n, which decides from :data:`SIGN_TEST_SEEDS` (6) seeds.
3. **The finding**: reproduced when every comparison holds; contradicted when any fails
   (the failing comparisons are named); else not tested, "no significant difference" (or
   "not decided by the sign test"), with the evidence.

No test corrects for the several comparisons of a finding: a finding is reproduced only
when each of them holds on its own.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from memloss.presets import PRESETS
from memloss.presets.findings import FINDINGS, Comparison, Finding, row_split
from memloss.reports.wording import metric as metric_words

__all__ = ["CONFIDENCE", "MIN_SEEDS", "MIN_RISE", "ALPHA", "SIGN_TEST_SEEDS", "VERDICTS",
           "TRIVIAL_METRICS", "STATUSES", "RESULT_COLUMNS", "DivergedRun", "Outcome", "Verdict",
           "LOSS_LIKE", "curve_quantity", "compare", "overfits", "verdict", "verdicts",
           "results_frame", "diverged_runs", "diverged_where", "seed_span", "curves_of",
           "trivial_baselines", "preset_trivial", "verdict_table", "verdicts_frame",
           "write_results", "read_results", "write_trivial", "read_trivial"]

log = logging.getLogger(__name__)

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
MIN_SEEDS = 3
#: how much the last validation score must be worse than the best (relative) to count as
#: the baseline having begun to overfit
MIN_RISE = 0.005
VERDICTS = ("reproduced", "contradicted", "not tested")
#: a result's ``status``: a finished run's value, or a run that diverged (no value)
STATUSES = ("finished", "diverged")
#: metrics a trivial model gives (:mod:`memloss.tasks.baselines`); a row scored in another
#: (F1, MSE) is not held to a trivial baseline
TRIVIAL_METRICS = ("perplexity", "bpc", "accuracy", "error")
#: the fewest paired seeds, all won by the same row, with which the two-sided exact sign
#: test decides at ALPHA (2 * 0.5 ** n < ALPHA)
SIGN_TEST_SEEDS = next(n for n in range(1, 64) if 2 * 0.5 ** n < ALPHA)
#: metrics that are an increasing function of the loss a network trains on (perplexity =
#: exp(loss), bpc = loss / ln 2): their validation curve is the loss's, in the metric's units
LOSS_LIKE = frozenset({"perplexity", "bpc", "loss", "nll", "mse", "rmse"})


def curve_quantity(metric: str) -> tuple[str, bool]:
    """The validation quantity whose curve shows a row overfitting, and whether lower is
    better: the metric itself where it is :data:`LOSS_LIKE`, else the validation loss (a
    classifier's error or accuracy can keep improving after its loss has turned up)."""
    if metric in LOSS_LIKE:
        return metric, metric_words(metric).lower_is_better
    return "loss", True


@dataclass(frozen=True)
class DivergedRun:
    """A run that stopped on a non-finite loss, gradient or weights: ``row`` (the full
    preset), ``cpu``, ``seed``, ``at`` (what went non-finite and where, e.g. "non-finite
    gradient norm (nan) at epoch 1 step 14"), the commit if its run directory recorded one,
    the run's name, the error message and the preset it ran (``row`` or its ``-cpu``
    variant; empty: ``ROW-cpu`` when ``cpu``, else ``row``)."""

    row: str
    cpu: bool
    seed: int
    at: str
    commit: str = ""
    run: str = ""
    error: str = ""
    preset: str = ""

    @property
    def preset_name(self) -> str:
        return self.preset or (f"{self.row}-cpu" if self.cpu else self.row)


@dataclass(frozen=True)
class Outcome:
    """One comparison: ``holds`` (True / False / None: undecided), the mean paired
    difference (positive: ``a`` better; for ``below``/``above`` the row's mean), its
    interval, the p-value and the seeds paired."""

    comparison: Comparison
    holds: bool | None
    mean: float
    low: float
    high: float
    p_value: float
    seeds: int
    #: decided by the sign test (a row diverged): the pairs ``a`` won and ``b`` won
    wins: "tuple[int, int] | None" = None
    #: which rows diverged, in how many seeds, where (sign test only)
    diverged: str = ""
    #: a ``better`` comparison that fails because the rows score alike: the bound ``m`` its
    #: interval lies within (rule, step 2)
    alike_within: float | None = None

    def describe(self) -> str:
        c = self.comparison
        if self.wins is not None:
            won, lost = self.wins
            tied = self.seeds - won - lost
            short = (f"; the sign test decides from {SIGN_TEST_SEEDS} untied pairs"
                     if won + lost < SIGN_TEST_SEEDS else "")
            p = "" if math.isnan(self.p_value) else f", p = {self.p_value:.2g}"
            return (f"{c.a} better than {c.b} in {won} of {self.seeds} paired seeds, worse in "
                    f"{lost}{f', tied in {tied}' if tied else ''} (sign test{p}; "
                    f"{self.diverged}{short})")
        if isinstance(c.b, float):
            what = (f"{c.a} mean {self.mean:.4g} [{self.low:.4g}, {self.high:.4g}], paper "
                    f"{'<' if c.relation == 'below' else '>'}{c.b:g}")
        else:
            what = (f"{c.a} {'vs' if c.relation == 'similar' else 'better than'} {c.b} by "
                    f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}]")
        p = "" if math.isnan(self.p_value) else f", p = {self.p_value:.2g}"
        alike = ("" if self.alike_within is None else
                 f"; alike: within +-{self.alike_within:.3g}")
        return f"{what} ({self.seeds} seeds{p}{alike})"


@dataclass(frozen=True)
class Verdict:
    finding: Finding
    verdict: str
    reasons: tuple[str, ...]
    outcomes: tuple[Outcome, ...]
    trivial: dict

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _interval(d: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, CONFIDENCE interval and two-sided p-value (against 0) of ``d``."""
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return mean, mean, mean, (0.0 if mean != 0 else 1.0)
    low, high = stats.t.interval(CONFIDENCE, d.size - 1, loc=mean, scale=sd / math.sqrt(d.size))
    p = float(stats.ttest_1samp(d, 0.0).pvalue)
    return mean, float(low), float(high), p


def diverged_where(at: Mapping[int, str]) -> str:
    """Where the seeds of ``at`` (seed -> where) diverged, each place once (with its seeds
    when they diverged in more than one place)."""
    places: dict[str, list[int]] = {}
    for s in sorted(at):
        places.setdefault(at[s], []).append(s)
    if len(places) == 1:
        return next(iter(places))
    return " and ".join(f"{w} (seed{'s' if len(ss) > 1 else ''} {', '.join(map(str, ss))})"
                        for w, ss in places.items())


def _diverged_words(row: str, at: Mapping[int, str], seeds: int) -> str:
    """``"ROW diverged in k of n seeds: WHERE"``."""
    return f"{row} diverged in {len(at)} of {seeds} seeds: {diverged_where(at)}"


def _sign_compare(c: Comparison, a: Mapping[int, float], b: Mapping[int, float],
                  diverged_a: Mapping[int, str], diverged_b: Mapping[int, str],
                  lower_is_better: bool) -> Outcome:
    """A ``better`` comparison with diverged seeds: the exact two-sided sign test (rule,
    step 2), a diverged seed worse than any finite one and tied with another diverged."""
    seeds = sorted((set(a) | set(diverged_a)) & (set(b) | set(diverged_b)))
    sign = -1.0 if lower_is_better else 1.0
    won = lost = 0
    for s in seeds:
        if s in diverged_a or s in diverged_b:
            won += int(s in diverged_b and s not in diverged_a)
            lost += int(s in diverged_a and s not in diverged_b)
        else:
            d = sign * (a[s] - b[s])
            won, lost = won + int(d > 0), lost + int(d < 0)
    p = float(stats.binomtest(won, won + lost, 0.5).pvalue) if won + lost else math.nan
    holds = (None if not p < ALPHA or won == lost else won > lost)
    words = [_diverged_words(row, {s: at[s] for s in seeds if s in at}, len(seeds))
             for row, at in ((c.a, diverged_a), (c.b, diverged_b))
             if any(s in at for s in seeds)]  # of the paired seeds
    return Outcome(c, holds, math.nan, math.nan, math.nan, p, len(seeds), (won, lost),
                   "; ".join(words))


def compare(c: Comparison, a: Mapping[int, float], b: "Mapping[int, float] | float",
            lower_is_better: bool, margin: float = 0.02,
            diverged_a: Mapping[int, str] | None = None,
            diverged_b: Mapping[int, str] | None = None,
            paper_gap: float | None = None) -> Outcome:
    """Apply step 2 of the rule to one comparison: ``a`` and ``b`` map seed -> value (``b``
    a number for ``below``/``above``); ``diverged_a`` / ``diverged_b``: seed -> where that
    seed of the row diverged (a ``better`` comparison with one in its paired seeds is
    decided by the sign test); ``paper_gap``: the difference the paper reports between the
    two rows, relative to their mean (caps ``margin`` for ``better``). Needs at least 2
    paired seeds."""
    diverged_a, diverged_b = dict(diverged_a or {}), dict(diverged_b or {})
    if diverged_a or diverged_b:
        if c.relation != "better":
            raise ValueError(f"{c.a} {c.relation} {c.b}: a diverged row has no finite score "
                             "to compare; the rule does not test it (step 1)")
        assert isinstance(b, Mapping)
        paired = (set(a) | set(diverged_a)) & (set(b) | set(diverged_b))
        if paired & (set(diverged_a) | set(diverged_b)):
            return _sign_compare(c, a, b, diverged_a, diverged_b, lower_is_better)
    if isinstance(c.b, float):
        if len(a) < 2:
            raise ValueError(f"{c.a}: {len(a)} seed(s); the rule needs at least 2")
        values = np.array([a[s] for s in sorted(a)], dtype=float)
        mean, low, high, _ = _interval(values)
        p = float(stats.ttest_1samp(values, c.b).pvalue) if values.std(ddof=1) > 0 else (
            0.0 if mean != c.b else 1.0)
        if c.relation == "below":  # strictly: "<25%" is not 25%
            holds = True if high < c.b else False if low >= c.b else None
        else:
            holds = True if low > c.b else False if high <= c.b else None
        return Outcome(c, holds, mean, low, high, p, values.size)
    assert isinstance(b, Mapping)
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        raise ValueError(f"{c.a} vs {c.b}: {len(seeds)} paired seed(s); the rule needs at least 2")
    sign = -1.0 if lower_is_better else 1.0
    d = sign * (np.array([a[s] for s in seeds]) - np.array([b[s] for s in seeds]))
    mean, low, high, p = _interval(d)
    scale = float(np.mean([abs(a[s]) for s in seeds] + [abs(b[s]) for s in seeds]))
    if c.relation == "better":
        m = scale * (margin if paper_gap is None else min(margin, abs(paper_gap)))
        if low > 0 or high < 0:  # a significant win or loss
            return Outcome(c, low > 0, mean, low, high, p, len(seeds))
        alike = -m <= low and high <= m  # neither, and no win (or loss) as large as m
        return Outcome(c, False if alike else None, mean, low, high, p, len(seeds),
                       alike_within=m if alike else None)
    m = margin * scale  # similar: within +-margin of the rows' mean
    holds = True if (low >= -m and high <= m) else False if (low > m or high < -m) else None
    return Outcome(c, holds, mean, low, high, p, len(seeds))


def overfits(curve: Sequence[float], lower_is_better: bool, min_rise: float = MIN_RISE) -> bool:
    """Whether a validation curve (in evaluation order) passed its minimum and rose: at
    least 3 evaluations, the best not the last, the last worse than the best by more than
    ``min_rise`` (relative)."""
    values = [float(v) for v in curve]
    if len(values) < 3:
        return False
    sign = 1.0 if lower_is_better else -1.0
    best_at = min(range(len(values)), key=lambda i: sign * values[i])
    best, last = values[best_at], values[-1]
    return best_at < len(values) - 1 and sign * (last - best) > min_rise * abs(best)


def _beats(value: float, trivial: float, lower_is_better: bool) -> bool:
    return value < trivial if lower_is_better else value > trivial


def _diverged_of(results: pd.DataFrame) -> dict[str, dict[int, str]]:
    """row -> seed -> where it diverged, from the results' ``status`` column (none in
    results without it)."""
    if "status" not in results or results.empty:
        return {}
    sel = results[results["status"] == "diverged"]
    at = sel["diverged_at"] if "diverged_at" in sel else pd.Series("", index=sel.index)
    out: dict[str, dict[int, str]] = {}
    for r, s, w in zip(sel["row"], sel["seed"], at.fillna("")):
        out.setdefault(str(r), {})[int(s)] = str(w) or "non-finite, where not recorded"
    return out


def _net_size(row: str, cpu: bool) -> tuple[int, int]:
    """(layers, units) of the network a row trains at that size."""
    net = PRESETS.get(f"{row}-cpu" if cpu else row).config.net
    return int(net.num_layers), int(net.hidden_size)


def seed_span(seeds: Iterable[int]) -> str:
    """``"12-59"`` for a run of consecutive seeds, else the seeds listed."""
    got = sorted(set(int(s) for s in seeds))
    lo, hi = got[0], got[-1]
    return f"{lo}-{hi}" if len(got) == hi - lo + 1 else ", ".join(map(str, got))


def _same_sizes(finding: Finding, cpu: bool) -> list[str]:
    """For a finding about network sizes, its comparisons whose two rows train networks of
    one size here (step 1 of the rule)."""
    out = []
    for c in finding.comparisons if finding.sizes else ():
        if not isinstance(c.b, str):
            continue
        a, b = (row_split(r, finding.split)[0] for r in (c.a, c.b))
        if _net_size(a, cpu) == _net_size(b, cpu):
            layers, units = _net_size(a, cpu)
            out.append(f"{a} and {b} train the same network at this size ({layers} x {units}): "
                       "the finding compares network sizes")
    return out


def _paper_gap(a: tuple[str, str], b: "tuple[str, str] | None") -> float | None:
    """The difference the paper reports between rows ``a`` and ``b`` ((preset, split) each),
    relative to their mean; None where it does not report both (or gives a bound)."""
    if b is None:
        return None
    pa, pb = PRESETS.get(a[0]), PRESETS.get(b[0])
    if a[1] in pa.bounds or b[1] in pb.bounds:
        return None
    xa, xb = pa.reported.get(a[1]), pb.reported.get(b[1])
    if xa is None or xb is None or not (abs(xa) + abs(xb)) > 0:
        return None
    return abs(xa - xb) / ((abs(xa) + abs(xb)) / 2)


def verdict(finding: Finding, results: pd.DataFrame,
            curves: Mapping[tuple[str, int], Sequence[float]],
            trivial: Mapping[tuple[str, str], float], cpu: bool = False) -> Verdict:
    """The rule (module doc) for one finding. ``results``: columns ``row`` (full preset
    name), ``split``, ``seed``, ``value``, and optionally ``status`` ("diverged": a run
    with no value, on any split) and ``diverged_at``; ``curves``: (row, seed) -> validation
    values in order; ``trivial``: (row, split) -> the trivial baseline's score on that
    row's data."""
    reasons: list[str] = []
    values: dict[tuple[str, str], dict[int, float]] = {}
    diverged: dict[tuple[str, str], dict[int, str]] = {}
    finished = (results[results["status"] != "diverged"] if "status" in results else results)
    by_row = _diverged_of(results)
    sample = set(finding.cpu_seeds) if cpu and finding.cpu_seeds else None
    for ref in finding.rows():
        row, split = row_split(ref, finding.split)
        sel = finished[(finished["row"] == row) & (finished["split"] == split)].dropna(
            subset=["value"])
        values[(row, split)] = {int(s): float(v) for s, v in zip(sel["seed"], sel["value"])
                                if sample is None or int(s) in sample}
        diverged[(row, split)] = {s: w for s, w in by_row.get(row, {}).items()
                                  if s not in values[(row, split)]
                                  and (sample is None or s in sample)}
    seeds_of = {k: set(values[k]) | set(diverged[k]) for k in values}
    if sample is not None:
        short_of = [f"{r} {len(seeds_of[(r, s)])} of {len(sample)}"
                    for r, s in values if sample - seeds_of[(r, s)]]
        if short_of:
            reasons.append(f"its declared sample, seeds {seed_span(sample)}, has not all run "
                           f"({', '.join(short_of)})")
    elif missing := [f"{r}:{s}" for (r, s), ran in seeds_of.items() if not ran]:
        reasons.append(f"no runs of {', '.join(missing)}")
    directions = {r: metric_words(PRESETS.get(r).metric).lower_is_better for r, _ in values}
    for c in finding.comparisons:
        ka = row_split(c.a, finding.split)
        kb = row_split(c.b, finding.split) if isinstance(c.b, str) else None
        a = seeds_of[ka]
        n = len(a) if kb is None else len(a & seeds_of[kb])
        if a and (kb is None or seeds_of[kb]) and n < MIN_SEEDS:
            reasons.append(f"fewer than {MIN_SEEDS} seeds ({n} paired for {c.a} vs {c.b})")
        if c.relation != "better":
            reasons += [_diverged_words(r, diverged[k], len(seeds_of[k]))
                        for r, k in ((c.a, ka), (c.b, kb)) if k is not None and diverged[k]]
        elif kb is not None and n and all(s in diverged[ka] and s in diverged[kb]
                                          for s in a & seeds_of[kb]):
            reasons.append(f"both diverged: {c.a} and {c.b} in every one of their {n} paired "
                           f"seeds ({c.a}: {diverged_where(diverged[ka])}; {c.b}: "
                           f"{diverged_where(diverged[kb])})")
    used_trivial: dict[str, float] = {}
    short: list[str] = []
    for (row, split), by_seed in values.items():
        key = (row, split.replace("_mc", ""))
        if not by_seed:  # no runs, or every seed diverged: judged by its comparisons
            continue
        if key not in trivial:
            if PRESETS.get(row).metric in TRIVIAL_METRICS:
                reasons.append(f"no trivial baseline of {row}'s data on {key[1]} (its data is "
                               "not on this machine)")
            continue
        used_trivial[f"{row}:{split}"] = trivial[key]
        if row not in finding.may_fail:
            mean = float(np.mean(list(by_seed.values())))
            if not _beats(mean, trivial[key], directions[row]):
                short.append(f"{row} {split} {mean:.4g} against {trivial[key]:.4g}")
    if short:
        reasons.append(f"{len(short)} of {sum(bool(v) for v in values.values())} compared rows "
                       "did not beat the trivial baseline of their data (" + "; ".join(short)
                       + ")")
    for row in finding.baselines:
        seeds = sorted(s for (r, s) in curves if r == row)
        quantity, lower = curve_quantity(PRESETS.get(row).metric)
        if by_row.get(row):
            reasons.append("the baseline " + _diverged_words(
                row, by_row[row], len(set(seeds) | set(by_row[row]))))
        elif not seeds:
            reasons.append(f"the baseline {row} has no validation curve")
        elif not all(overfits(curves[(row, s)], lower) for s in seeds):
            n = sum(overfits(curves[(row, s)], lower) for s in seeds)
            reasons.append(f"the baseline {row} did not overfit (its validation {quantity} "
                           f"passed its minimum and rose in {n} of {len(seeds)} seeds)")
    reasons += _same_sizes(finding, cpu)
    if reasons:
        return Verdict(finding, "not tested", tuple(dict.fromkeys(reasons)), (), used_trivial)
    outcomes = []
    for c in finding.comparisons:
        row_a = row_split(c.a, finding.split)
        row_b = row_split(c.b, finding.split) if isinstance(c.b, str) else None
        b = values[row_b] if row_b is not None else c.b
        outcomes.append(compare(c, values[row_a], b, directions[row_a[0]], finding.margin,
                                diverged[row_a], diverged[row_b] if row_b else None,
                                paper_gap=_paper_gap(row_a, row_b)))
    failed = [o for o in outcomes if o.holds is False]
    if failed:
        return Verdict(finding, "contradicted",
                       tuple("fails: " + o.describe() for o in failed), tuple(outcomes),
                       used_trivial)
    undecided = [o for o in outcomes if o.holds is None]
    if undecided:
        return Verdict(finding, "not tested",
                       tuple(("not decided by the sign test: " if o.wins is not None else
                              "no significant difference: ") + o.describe()
                             for o in undecided),
                       tuple(outcomes), used_trivial)
    return Verdict(finding, "reproduced", (), tuple(outcomes), used_trivial)


def verdicts(results: pd.DataFrame, curves: Mapping[tuple[str, int], Sequence[float]],
             trivial: Mapping[tuple[str, str], float],
             findings: Iterable[Finding] | None = None, cpu: bool = False) -> list[Verdict]:
    """:func:`verdict` for every finding (default: all of :data:`FINDINGS`) at one size
    (``cpu``: the rows' ``-cpu`` presets)."""
    return [verdict(f, results, curves, trivial, cpu)
            for f in (FINDINGS.values() if findings is None else findings)]


# --- from run directories ------------------------------------------------------------------
def _row(run) -> "tuple[str, bool, dict] | None":
    info = run.config.get("info")
    rec = info.get("preset") if isinstance(info, dict) else None
    if not isinstance(rec, dict) or not rec.get("name"):
        return None
    cpu = rec.get("cpu_of") is not None
    return str(rec.get("cpu_of") or rec["name"]), cpu, rec


#: the columns of :func:`results_frame` (files written before ``status`` and
#: ``diverged_at`` read as every row finished)
RESULT_COLUMNS = ["row", "cpu", "split", "seed", "value", "commit", "run", "status",
                  "diverged_at"]


def results_frame(runs: Sequence, diverged: Sequence[DivergedRun] = ()) -> pd.DataFrame:
    """One value per finished run of a preset and split, and one row per diverged run
    (:func:`diverged_runs`): columns ``row`` (the full preset), ``cpu``, ``split``,
    ``seed``, ``value``, ``commit``, ``run``, ``status`` (:data:`STATUSES`) and
    ``diverged_at``. A diverged run has no value and no split (it scores on none): its
    ``split`` is empty and ``diverged_at`` says what went non-finite, where."""
    from memloss.reports.paper_tables import SPLITS, measured

    out = []
    for run in runs:
        found = _row(run)
        if found is None or not run.final:
            continue
        row, cpu, rec = found
        for split in SPLITS:
            value = measured(run, split, str(rec.get("metric", "")))
            if value is not None:
                out.append({"row": row, "cpu": cpu, "split": split, "seed": run.seed,
                            "value": value, "commit": str(run.config.get("commit") or ""),
                            "run": run.name, "status": "finished", "diverged_at": ""})
    for d in diverged:
        out.append({"row": d.row, "cpu": d.cpu, "split": "", "seed": d.seed, "value": math.nan,
                    "commit": d.commit, "run": d.run, "status": "diverged",
                    "diverged_at": d.at})
    return pd.DataFrame(out, columns=RESULT_COLUMNS)


#: what went non-finite and where, in a NonFiniteError's message
_AT = re.compile(r"^(?P<at>.*?\b(?:at|after) epoch \d+ step \d+)")
_NON_FINITE = "NonFiniteError: "


def _at(error: str) -> str:
    """``"non-finite gradient norm (nan) at epoch 1 step 14"`` from a NonFiniteError's
    message; the message up to its first ``;`` where it names no epoch and step."""
    message = error[len(_NON_FINITE):] if error.startswith(_NON_FINITE) else error
    found = _AT.match(message)
    return found["at"] if found else message.split("; ")[0].strip()


def _seed_of(command: Sequence[str], default: int, where: Path) -> int:
    """The seed a ``memloss train PRESET [--set seed=N ...]`` command trains with: the last
    ``--set seed=N``, else ``default`` (the preset's)."""
    seed = str(default)
    for flag, value in zip(command, command[1:]):
        if flag == "--set" and str(value).partition("=")[0].strip() == "seed":
            seed = str(value).partition("=")[2].strip()
    try:
        return int(seed)
    except ValueError:
        raise ValueError(f"{where}: its command sets seed={seed!r}, not a whole number; fix "
                         "or remove the record") from None


def _diverged_run(record: dict, where: Path, run_dir: Path) -> "DivergedRun | None":
    """One error record of a sweep (:func:`memloss.sweep.job.run_job`) as a diverged run;
    None for another failure, or a run of no preset."""
    from memloss.core import runfiles as rf

    error = str(record.get("error") or "")
    if not error.startswith(_NON_FINITE):
        log.warning("%s: %s failed with %s: not a divergence, left out", where,
                    record.get("name", run_dir.name), error.split(":")[0] or "no error")
        return None
    if (run_dir / rf.FINAL).is_file():
        log.warning("%s: %s finished after this error was recorded; its final.json counts",
                    where, run_dir.name)
        return None
    config = rf.read_json(run_dir / rf.CONFIG, "config") if (run_dir / rf.CONFIG).is_file() else {}
    rec = ((config.get("info") or {}).get("preset") or {}) if isinstance(config, dict) else {}
    command = [str(c) for c in record.get("command") or []]
    if rec.get("name"):
        name = str(rec["name"])
        seed = config.get("seed", (config.get("train") or {}).get("seed"))
    else:
        name = command[command.index("train") + 1] if "train" in command[:-1] else ""
        seed = None
    if name not in PRESETS:
        log.warning("%s: %s diverged in a run of no preset (%r), left out", where,
                    run_dir.name, name)
        return None
    preset = PRESETS.get(name)
    seed = _seed_of(command, preset.config.seed, where) if seed is None else int(seed)
    commit = (config.get("commit") if isinstance(config, dict) else None) or record.get("commit")
    return DivergedRun(preset.cpu_of or name, preset.cpu_of is not None, seed, _at(error),
                       str(commit or ""), str(record.get("name") or run_dir.name), error, name)


def diverged_runs(paths: Sequence["str | Path"]) -> list[DivergedRun]:
    """The runs that diverged (a :class:`~memloss.training.trainer.NonFiniteError`), from
    the error records of the sweeps at or below ``paths`` (``DIR/.sweep/errors/NAME.json``;
    for a run directory, its sweep's record of it). The preset and seed come from the run
    directory's config.json where the run kept one, else from the record's ``memloss train
    PRESET --set seed=N`` command; the commit from that config.json, or from the record's
    ``commit`` where it has one. Other failures are left out (with a warning): they measure
    nothing. A corrupt record is an error naming it."""
    from memloss.core import runfiles as rf
    from memloss.core.runfiles import SWEEP_META, error_path

    records: list[Path] = []
    for p in map(Path, paths):
        if rf.is_run_dir(p):
            records.append(error_path(p.parent, p.name))
        else:
            records += sorted(p.rglob(f"{SWEEP_META}/errors/*.json"))
    out = []
    for r in dict.fromkeys(records):
        if not r.is_file():
            continue
        try:
            record = rf.read_json(r)
        except rf.RunDirError as e:
            raise ValueError(f"{r}: not a readable error record ({e}); remove it, or run "
                             "`memloss sweep` again to rewrite it") from None
        run = _diverged_run(record if isinstance(record, dict) else {}, r,
                            r.parent.parent.parent / r.stem)
        if run is not None:
            out.append(run)
    return out


def curves_of(runs: Sequence) -> dict[tuple[str, bool, int], list[float]]:
    """(row, cpu, seed) -> the run's validation scores, in order, in the quantity
    :func:`curve_quantity` names for its preset's metric."""
    out = {}
    for run in runs:
        found = _row(run)
        if found is None:
            continue
        row, cpu, rec = found
        key = f"valid_{curve_quantity(str(rec.get('metric', '')))[0]}"
        out[(row, cpu, int(run.seed))] = [float(m[key]) for m in run.metrics if key in m]
    return out


#: a row's metric that is another's complement (a preset scored in error on a task that
#: reports accuracy): the trivial baseline is turned into the row's metric
COMPLEMENTS = {("accuracy", "error"), ("error", "accuracy")}


def _task_trivial(task: str, params: dict, cache: dict, metric: str | None = None
                  ) -> dict[str, float]:
    """The trivial baseline of a task on valid and test, in ``metric`` (the row's; the
    task's own where None)."""
    from memloss.build import task_from
    from memloss.tasks.baselines import baseline

    key = repr((task, sorted(params.items())))
    if key not in cache:
        try:
            t = task_from(str(task), params)
            cache[key] = {s: baseline(t, s) for s in ("valid", "test")}
        except ValueError:  # a metric no trivial model gives (F1, MSE), or absent data
            cache[key] = {}
    out = {}
    for split, b in cache[key].items():
        flip = metric is not None and (b.metric, metric) in COMPLEMENTS
        out[split] = 1.0 - b.value if flip else b.value
    return out


def trivial_baselines(runs: Sequence) -> dict[tuple[str, bool, str], float]:
    """(row, cpu, split) -> the trivial baseline of the row's data (built from its runs'
    task settings) on valid and test, for rows whose metric a trivial model gives."""
    cache: dict[str, dict[str, float]] = {}
    out = {}
    for run in runs:
        found = _row(run)
        if found is None:
            continue
        row, cpu, rec = found
        train = run.config.get("train") or {}
        for split, value in _task_trivial(train.get("task"), dict(train.get("task_params") or {}),
                                          cache, rec.get("metric")).items():
            out[(row, cpu, split)] = value
    return out


def preset_trivial(rows: Iterable[str], cpu: bool) -> dict[tuple[str, bool, str], float]:
    """As :func:`trivial_baselines`, from the presets' own task settings (the ``-cpu``
    variant's when ``cpu``), for results without their run directories."""
    cache: dict[str, dict[str, float]] = {}
    out = {}
    for row in dict.fromkeys(rows):
        p = PRESETS.get(f"{row}-cpu" if cpu else row)
        for split, value in _task_trivial(p.settings["task"],
                                          dict(p.settings.get("task_params") or {}),
                                          cache, p.metric).items():
            out[(row, cpu, split)] = value
    return out


def verdicts_frame(results: pd.DataFrame, curves: Mapping[tuple[str, bool, int], Sequence[float]],
                   trivial: Mapping[tuple[str, bool, str], float],
                   findings: Iterable[Finding] | None = None) -> pd.DataFrame:
    """Verdicts of every finding at every size in ``results`` (:func:`results_frame`'s
    columns), one row each: id, paper, where, claim, size, verdict, reason, evidence, the
    trivial baselines held to, and the commits of the runs compared."""
    rows = []
    chosen = list(FINDINGS.values() if findings is None else findings)
    for cpu in sorted(set(results["cpu"])) or [True]:
        res = results[results["cpu"] == cpu]
        cur = {(r, s): v for (r, c, s), v in curves.items() if c == cpu}
        triv = {(r, s): v for (r, c, s), v in trivial.items() if c == cpu}
        for v in verdicts(res, cur, triv, chosen, cpu=bool(cpu)):
            rows_used = {row_split(r, v.finding.split)[0] for r in v.finding.rows()}
            commits = sorted(set(res[res["row"].isin(rows_used)]["commit"].fillna("")) - {""})
            rows.append({"id": v.finding.id, "paper": v.finding.paper.split(",")[0],
                         "where": v.finding.where, "claim": v.finding.claim,
                         "size": "CPU" if cpu else "full", "verdict": v.verdict,
                         "reason": v.reason,
                         "evidence": "; ".join(o.describe() for o in v.outcomes),
                         "trivial": "; ".join(f"{k} {x:.4g}" for k, x in v.trivial.items()),
                         "commits": ", ".join(str(c)[:12] for c in commits)})
    return pd.DataFrame(rows, columns=["id", "paper", "where", "claim", "size", "verdict",
                                       "reason", "evidence", "trivial", "commits"])


def verdict_table(runs: Sequence, findings: Iterable[Finding] | None = None,
                  diverged: Sequence[DivergedRun] = ()) -> pd.DataFrame:
    """:func:`verdicts_frame` of run directories (:class:`~memloss.reports.runs.RunRecord`)
    and the runs that diverged (:func:`diverged_runs`)."""
    return verdicts_frame(results_frame(runs, diverged), curves_of(runs),
                          trivial_baselines(runs), findings)


def _curves_path(path: Path) -> Path:
    return path.with_name(path.stem + ".curves" + path.suffix)


def write_results(runs: Sequence, path: "str | Path",
                  diverged: Sequence[DivergedRun] = ()) -> tuple[Path, Path]:
    """The runs' results (:func:`results_frame`, the diverged runs included) to ``path``
    (CSV) and their validation curves to ``PATH.curves.csv`` (row, cpu, seed, evaluation,
    value): what the verdicts need, without the run directories."""
    from memloss.core.atomic import atomic_write

    path = Path(path)
    results = results_frame(runs, diverged)
    curves = pd.DataFrame([{"row": r, "cpu": c, "seed": s, "evaluation": i, "value": v}
                           for (r, c, s), values in curves_of(runs).items()
                           for i, v in enumerate(values)],
                          columns=["row", "cpu", "seed", "evaluation", "value"])
    for frame, target in ((results, path), (curves, _curves_path(path))):
        atomic_write(target, lambda tmp, f=frame: f.to_csv(tmp, index=False))
    return path, _curves_path(path)


def read_results(*paths: "str | Path") -> tuple[pd.DataFrame, dict]:
    """Results and curves written by :func:`write_results` (a missing curves file: no
    curves), from one or more files; a run's result given twice (the same row, size, split
    and seed), or a seed both diverged and finished, is an error."""
    parts = [_read_one(p) for p in paths]
    results = pd.concat([r for r, _ in parts], ignore_index=True)
    curves = {k: v for _, c in parts for k, v in c.items()}
    twice = results[results.duplicated(["row", "cpu", "split", "seed"], keep=False)]
    if not twice.empty:
        raise ValueError(f"{len(twice)} results are given twice (first: "
                         f"{twice['row'].iloc[0]} {twice['split'].iloc[0] or 'diverged'} seed "
                         f"{twice['seed'].iloc[0]}); give each run's results once")
    key = ["row", "cpu", "seed"]
    down = results[results["status"] == "diverged"][key].drop_duplicates()
    both = down.merge(results[results["status"] != "diverged"][key].drop_duplicates())
    if not both.empty:
        raise ValueError(f"{len(both)} runs are both diverged and finished (first: "
                         f"{both['row'].iloc[0]} seed {both['seed'].iloc[0]}); keep one "
                         "result per run")
    return results, curves


def _read_one(path: "str | Path") -> tuple[pd.DataFrame, dict]:
    """One file of :func:`read_results`."""
    path = Path(path)
    try:
        results = pd.read_csv(path, dtype={"commit": str, "status": str, "diverged_at": str,
                                           "split": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable results CSV ({e}); write one with "
                         "tools/fidelity_tables.py RUNS --results-out FILE.csv") from None
    need = {"row", "cpu", "split", "seed", "value"}
    if not need <= set(results.columns):
        raise ValueError(f"{path}: columns {sorted(need - set(results.columns))} are missing; "
                         "write it with tools/fidelity_tables.py RUNS --results-out FILE.csv")
    if "commit" not in results:
        results["commit"] = ""
    # written before diverged runs were recorded: every row a finished run
    results["status"] = (results["status"].fillna("finished").astype(str)
                         if "status" in results else "finished")
    bad = sorted(set(results["status"]) - set(STATUSES))
    if bad:
        raise ValueError(f"{path}: unknown status {bad[0]!r} (valid: {', '.join(STATUSES)}); "
                         "write it with tools/fidelity_tables.py RUNS --results-out FILE.csv")
    results["diverged_at"] = (results["diverged_at"].fillna("").astype(str)
                              if "diverged_at" in results else "")
    results["split"] = results["split"].fillna("").astype(str)
    curves: dict[tuple[str, bool, int], list[float]] = {}
    cpath = _curves_path(path)
    if cpath.is_file():
        frame = pd.read_csv(cpath).sort_values(["row", "cpu", "seed", "evaluation"])
        for (r, c, s), g in frame.groupby(["row", "cpu", "seed"], sort=False):
            curves[(str(r), bool(c), int(s))] = [float(v) for v in g["value"]]
    return results, curves


def write_trivial(trivial: Mapping[tuple[str, bool, str], float], path: "str | Path") -> Path:
    """The trivial baselines (:func:`preset_trivial`) to a CSV (row, cpu, split, value), so
    that verdicts regenerate where the data they come from is absent."""
    from memloss.core.atomic import atomic_write

    frame = pd.DataFrame([{"row": r, "cpu": c, "split": s, "value": v}
                          for (r, c, s), v in sorted(trivial.items())],
                         columns=["row", "cpu", "split", "value"])
    atomic_write(Path(path), lambda tmp: frame.to_csv(tmp, index=False))
    return Path(path)


def read_trivial(path: "str | Path") -> dict[tuple[str, bool, str], float]:
    """What :func:`write_trivial` wrote."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable trivial-baseline CSV ({e}); write one with "
                         "tools/fidelity_tables.py --results ... --trivial-out FILE.csv") from None
    if not {"row", "cpu", "split", "value"} <= set(frame.columns):
        raise ValueError(f"{path}: needs the columns row, cpu, split, value; write it with "
                         "tools/fidelity_tables.py --results ... --trivial-out FILE.csv")
    return {(str(r), bool(c), str(s)): float(v)
            for r, c, s, v in zip(frame["row"], frame["cpu"], frame["split"], frame["value"])}
