"""A verdict per finding, by a stated rule: reproduced, contradicted, or not tested (why).

The findings are :data:`memloss.presets.findings.FINDINGS`. The input is one value per
(row, split, seed) (:func:`results_frame` reads it from run directories: the test score of
the weights the paper scores, :func:`memloss.reports.paper_tables.measured`), the
validation curve of every (row, seed), and the trivial baseline of each row's data
(:mod:`memloss.tasks.baselines`: the unigram model or the majority class, on the same
split). The rule (:func:`verdict`), for one finding at one size (full or CPU):

1. **Tested only where the regime can show it** (else "not tested", every reason given):
   every compared row has runs; every comparison pairs at least :data:`MIN_SEEDS` seeds
   (seed ``s`` of one row with seed ``s`` of the other); every compared row but those the
   paper says fail (``may_fail``) beats the trivial baseline in its mean; and every
   baseline row of the finding overfits in every seed: its validation curve has at least
   3 evaluations, its minimum is not the last one, and the last is worse than the minimum
   by more than :data:`MIN_RISE` (relative).
2. **Each comparison**, on the paired differences ``d_s`` (positive: ``a`` better, in the
   metric's direction): the two-sided paired t-test (``scipy.stats.ttest_rel``; against
   the number for ``below``/``above``, ``scipy.stats.ttest_1samp``) and the
   :data:`CONFIDENCE` interval of the mean difference (Student's t). ``better``: holds when
   the interval lies above 0 (p < 0.05 and the mean difference positive), fails when it
   lies below 0, else undecided. ``similar``: holds when the interval lies within
   ``+-margin`` of the rows' mean, fails when it lies outside it, else undecided.
   ``below`` / ``above`` (a bound of the paper, strict: "<25%" is below 0.25, not equal):
   the interval of the row's mean lies below / above the number. Identical differences in
   every seed have no spread: their interval is that one value.
3. **The finding**: reproduced when every comparison holds; contradicted when any fails
   (the failing comparisons are named); else not tested, "no significant difference".

No test corrects for the several comparisons of a finding: a finding is reproduced only
when each of them holds on its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from memloss.presets import PRESETS
from memloss.presets.findings import FINDINGS, Comparison, Finding, row_split
from memloss.reports.wording import metric as metric_words

__all__ = ["CONFIDENCE", "MIN_SEEDS", "MIN_RISE", "ALPHA", "VERDICTS", "TRIVIAL_METRICS",
           "Outcome", "Verdict", "compare", "overfits", "verdict", "verdicts", "results_frame",
           "curves_of", "trivial_baselines", "preset_trivial", "verdict_table", "verdicts_frame",
           "write_results", "read_results", "write_trivial", "read_trivial"]

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
MIN_SEEDS = 3
#: how much the last validation score must be worse than the best (relative) to count as
#: the baseline having begun to overfit
MIN_RISE = 0.005
VERDICTS = ("reproduced", "contradicted", "not tested")
#: metrics a trivial model gives (:mod:`memloss.tasks.baselines`); a row scored in another
#: (F1, MSE) is not held to a trivial baseline
TRIVIAL_METRICS = ("perplexity", "bpc", "accuracy", "error")


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

    def describe(self) -> str:
        c = self.comparison
        if isinstance(c.b, float):
            what = (f"{c.a} mean {self.mean:.4g} [{self.low:.4g}, {self.high:.4g}], paper "
                    f"{'<' if c.relation == 'below' else '>'}{c.b:g}")
        else:
            what = (f"{c.a} {'vs' if c.relation == 'similar' else 'better than'} {c.b} by "
                    f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}]")
        p = "" if math.isnan(self.p_value) else f", p = {self.p_value:.2g}"
        return f"{what} ({self.seeds} seeds{p})"


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


def compare(c: Comparison, a: Mapping[int, float], b: "Mapping[int, float] | float",
            lower_is_better: bool, margin: float = 0.02) -> Outcome:
    """Apply step 2 of the rule to one comparison: ``a`` and ``b`` map seed -> value (``b``
    a number for ``below``/``above``). Needs at least 2 paired seeds."""
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
    if c.relation == "better":
        holds = True if low > 0 else False if high < 0 else None
    else:  # similar: within +-margin of the rows' mean
        m = margin * float(np.mean([abs(a[s]) for s in seeds] + [abs(b[s]) for s in seeds]))
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


def verdict(finding: Finding, results: pd.DataFrame,
            curves: Mapping[tuple[str, int], Sequence[float]],
            trivial: Mapping[tuple[str, str], float]) -> Verdict:
    """The rule (module doc) for one finding. ``results``: columns ``row`` (full preset
    name), ``split``, ``seed``, ``value``; ``curves``: (row, seed) -> validation values in
    order; ``trivial``: (row, split) -> the trivial baseline's score on that row's data."""
    reasons: list[str] = []
    values: dict[tuple[str, str], dict[int, float]] = {}
    for ref in finding.rows():
        row, split = row_split(ref, finding.split)
        sel = results[(results["row"] == row) & (results["split"] == split)].dropna(subset=["value"])
        values[(row, split)] = {int(s): float(v) for s, v in zip(sel["seed"], sel["value"])}
    missing = [f"{r}:{s}" for (r, s), v in values.items() if not v]
    if missing:
        reasons.append(f"no runs of {', '.join(missing)}")
    directions = {r: metric_words(PRESETS.get(r).metric).lower_is_better for r, _ in values}
    for c in finding.comparisons:
        a = values[row_split(c.a, finding.split)]
        b = values[row_split(c.b, finding.split)] if isinstance(c.b, str) else None
        n = len(a) if b is None else len(set(a) & set(b))
        if a and (b is None or b) and n < MIN_SEEDS:
            reasons.append(f"fewer than {MIN_SEEDS} seeds ({n} paired for {c.a} vs {c.b})")
    used_trivial: dict[str, float] = {}
    short: list[str] = []
    for (row, split), by_seed in values.items():
        key = (row, split.replace("_mc", ""))
        if not by_seed:
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
        lower = metric_words(PRESETS.get(row).metric).lower_is_better
        if not seeds:
            reasons.append(f"the baseline {row} has no validation curve")
        elif not all(overfits(curves[(row, s)], lower) for s in seeds):
            n = sum(overfits(curves[(row, s)], lower) for s in seeds)
            reasons.append(f"the baseline {row} did not overfit (its validation curve passed "
                           f"its minimum and rose in {n} of {len(seeds)} seeds)")
    if reasons:
        return Verdict(finding, "not tested", tuple(reasons), (), used_trivial)
    outcomes = []
    for c in finding.comparisons:
        row_a = row_split(c.a, finding.split)
        b = values[row_split(c.b, finding.split)] if isinstance(c.b, str) else c.b
        outcomes.append(compare(c, values[row_a], b, directions[row_a[0]], finding.margin))
    failed = [o for o in outcomes if o.holds is False]
    if failed:
        return Verdict(finding, "contradicted",
                       tuple("fails: " + o.describe() for o in failed), tuple(outcomes),
                       used_trivial)
    undecided = [o for o in outcomes if o.holds is None]
    if undecided:
        return Verdict(finding, "not tested",
                       tuple("no significant difference: " + o.describe() for o in undecided),
                       tuple(outcomes), used_trivial)
    return Verdict(finding, "reproduced", (), tuple(outcomes), used_trivial)


def verdicts(results: pd.DataFrame, curves: Mapping[tuple[str, int], Sequence[float]],
             trivial: Mapping[tuple[str, str], float],
             findings: Iterable[Finding] | None = None) -> list[Verdict]:
    """:func:`verdict` for every finding (default: all of :data:`FINDINGS`)."""
    return [verdict(f, results, curves, trivial)
            for f in (FINDINGS.values() if findings is None else findings)]


# --- from run directories ------------------------------------------------------------------
def _row(run) -> "tuple[str, bool, dict] | None":
    info = run.config.get("info")
    rec = info.get("preset") if isinstance(info, dict) else None
    if not isinstance(rec, dict) or not rec.get("name"):
        return None
    cpu = rec.get("cpu_of") is not None
    return str(rec.get("cpu_of") or rec["name"]), cpu, rec


def results_frame(runs: Sequence) -> pd.DataFrame:
    """One value per finished run of a preset and split: columns ``row`` (the full preset),
    ``cpu``, ``split``, ``seed``, ``value``, ``commit``, ``run``."""
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
                            "run": run.name})
    return pd.DataFrame(out, columns=["row", "cpu", "split", "seed", "value", "commit", "run"])


def curves_of(runs: Sequence) -> dict[tuple[str, bool, int], list[float]]:
    """(row, cpu, seed) -> the run's validation scores in its preset's metric, in order."""
    out = {}
    for run in runs:
        found = _row(run)
        if found is None:
            continue
        row, cpu, rec = found
        key = f"valid_{rec.get('metric', '')}"
        out[(row, cpu, int(run.seed))] = [float(m[key]) for m in run.metrics if key in m]
    return out


def _task_trivial(task: str, params: dict, cache: dict) -> dict[str, float]:
    from memloss.build import task_from
    from memloss.tasks.baselines import baseline

    key = repr((task, sorted(params.items())))
    if key not in cache:
        try:
            t = task_from(str(task), params)
            cache[key] = {s: baseline(t, s).value for s in ("valid", "test")}
        except ValueError:  # a metric no trivial model gives (F1, MSE), or absent data
            cache[key] = {}
    return cache[key]


def trivial_baselines(runs: Sequence) -> dict[tuple[str, bool, str], float]:
    """(row, cpu, split) -> the trivial baseline of the row's data (built from its runs'
    task settings) on valid and test, for rows whose metric a trivial model gives."""
    cache: dict[str, dict[str, float]] = {}
    out = {}
    for run in runs:
        found = _row(run)
        if found is None:
            continue
        row, cpu, _ = found
        train = run.config.get("train") or {}
        for split, value in _task_trivial(train.get("task"), dict(train.get("task_params") or {}),
                                          cache).items():
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
                                          cache).items():
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
        for v in verdicts(res, cur, triv, chosen):
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


def verdict_table(runs: Sequence, findings: Iterable[Finding] | None = None) -> pd.DataFrame:
    """:func:`verdicts_frame` of run directories (:class:`~memloss.reports.runs.RunRecord`)."""
    return verdicts_frame(results_frame(runs), curves_of(runs), trivial_baselines(runs),
                          findings)


def _curves_path(path: Path) -> Path:
    return path.with_name(path.stem + ".curves" + path.suffix)


def write_results(runs: Sequence, path: "str | Path") -> tuple[Path, Path]:
    """The runs' results (:func:`results_frame`) to ``path`` (CSV) and their validation
    curves to ``PATH.curves.csv`` (row, cpu, seed, evaluation, value): what the verdicts
    need, without the run directories."""
    from memloss.core.atomic import atomic_write

    path = Path(path)
    results = results_frame(runs)
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
    and seed) is an error."""
    parts = [_read_one(p) for p in paths]
    results = pd.concat([r for r, _ in parts], ignore_index=True)
    curves = {k: v for _, c in parts for k, v in c.items()}
    twice = results[results.duplicated(["row", "cpu", "split", "seed"], keep=False)]
    if not twice.empty:
        raise ValueError(f"{len(twice)} results are given twice (first: "
                         f"{twice['row'].iloc[0]} {twice['split'].iloc[0]} seed "
                         f"{twice['seed'].iloc[0]}); give each run's results once")
    return results, curves


def _read_one(path: "str | Path") -> tuple[pd.DataFrame, dict]:
    """One file of :func:`read_results`."""
    path = Path(path)
    try:
        results = pd.read_csv(path, dtype={"commit": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable results CSV ({e}); write one with "
                         "tools/fidelity_tables.py RUNS --results-out FILE.csv") from None
    need = {"row", "cpu", "split", "seed", "value"}
    if not need <= set(results.columns):
        raise ValueError(f"{path}: columns {sorted(need - set(results.columns))} are missing; "
                         "write it with tools/fidelity_tables.py RUNS --results-out FILE.csv")
    if "commit" not in results:
        results["commit"] = ""
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
