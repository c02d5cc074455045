"""The regression gate: compare two asv result sets and fail only on a slowdown that is
larger than the threshold *and* larger than the noise asv measured.

    .venv/bin/python -m benchmarks.compare BASE NEW [--threshold 1.2] [--alpha 0.01]
        [--bench REGEX] [--results-dir .asv/results]

``BASE`` and ``NEW`` are asv result files (``.asv/results/<machine>/<hash>-<env>.json``)
or commit hashes (a prefix of 4+ hex digits) looked up under ``--results-dir``. Every
figure the suites track is smaller-is-better (time, ratio to ``torch.nn``, peak bytes,
error rate, perplexity), so ``ratio = new / base`` above the threshold is a slowdown.

Whether old and new differ is decided from what asv stored with each result:

* the samples (``asv continuous``, or ``asv run --record-samples``): a two-sided
  Mann-Whitney U test (``scipy.stats.mannwhitneyu``), different when ``p < alpha``;
* else asv's 99% confidence intervals of the median: different when they do not overlap;
* a figure asv stored without statistics (an exact count such as peak bytes or a seeded
  error rate) is its own interval: different when the values differ.

Absolute timings move with the machine: on a shared machine another job can make every
call 1.2-1.5x slower for minutes, in process CPU time too (shared caches and memory
bandwidth). The suites therefore also store every layer timing as a ratio to the
``torch.nn`` baseline run interleaved with it in the same process (``RatioToTorchNN``);
an absolute timing whose ratio twin did not move, and the baseline's own timing, get the
verdict ``drift`` and do not fail the gate (see ``NORMALISED_BY``).

Verdicts: ``REGRESSION`` (beyond the threshold and different), ``faster`` (below
1/threshold and different), ``drift`` (see above), ``noise`` (beyond the threshold
either way, but not told apart from noise), ``ok``, ``few samples`` (fewer than
``--min-samples`` samples on a side: a ``--quick`` run is a smoke test, not a
measurement), ``changed`` (the benchmark's code changed between the runs: not
comparable). Exit status: 0 no regression, 1 at least one, 2 bad input (missing or
foreign file, bad option, nothing that could be compared).
Not an asv benchmark module (asv collects nothing here; asv itself is imported lazily,
since benchmark environments have only asv's runner).
"""
from __future__ import annotations

import argparse
import itertools
import math
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

__all__ = ["Measurement", "Row", "ResultSet", "load_results", "find_result_file", "compare",
           "is_different", "format_table", "main", "VERDICTS", "NORMALISED_BY"]

VERDICTS = ("REGRESSION", "faster", "drift", "noise", "ok", "few samples", "changed")
#: absolute CPU/GPU timings -> (the benchmark holding the same timing as a ratio to the
#: ``torch.nn`` baseline run interleaved in the same process, the baseline's path value)
NORMALISED_BY = {"bench_layer.TimeLayer.time_forward_backward":
                 ("bench_layer.RatioToTorchNN.track_ratio_to_torch_nn", "'torch.nn'")}


@dataclass(frozen=True)
class Measurement:
    """One benchmark x parameter combination of one result set."""

    value: float
    ci: tuple[float, float] | None = None  # asv's 99% interval of the median
    samples: tuple[float, ...] | None = None
    repeat: int | None = None  # how many samples the statistics came from
    version: str | None = None  # asv's hash of the benchmark's code

    @property
    def exact(self) -> bool:
        """Stored without statistics: a count, not a sample of a noisy quantity."""
        return self.ci is None and self.samples is None

    def interval(self) -> tuple[float, float]:
        if self.ci is not None:
            return self.ci
        if self.samples:
            return min(self.samples), max(self.samples)
        return self.value, self.value

    def n(self) -> int:
        if self.samples is not None:
            return len(self.samples)
        return self.repeat if self.repeat is not None else 1


@dataclass(frozen=True)
class ResultSet:
    """What the gate reads from one asv result file."""

    path: Path
    commit: str
    machine: str
    env: str
    rows: dict[tuple[str, str], Measurement]
    units: dict[str, str]


@dataclass(frozen=True)
class Row:
    benchmark: str
    params: str
    base: Measurement
    new: Measurement
    ratio: float
    evidence: str
    verdict: str

    @property
    def name(self) -> str:
        return f"{self.benchmark}({self.params})" if self.params else self.benchmark


def find_result_file(ref: str, results_dir: Path) -> Path:
    """A result file path, or the file of a commit hash (prefix) under ``results_dir``."""
    p = Path(ref)
    if p.is_file():
        return p
    if not re.fullmatch(r"[0-9a-fA-F]{4,40}", ref):
        raise ValueError(f"{ref!r} is neither an asv result file nor a commit hash; pass a "
                         f".json from {results_dir}/<machine>/ or a hash of 4+ hex digits")
    prefix = ref[:8].lower()
    hits = sorted(f for f in Path(results_dir).glob("*/*.json")
                  if f.name != "machine.json" and f.name.split("-")[0].startswith(prefix))
    if not hits:
        raise ValueError(f"no asv results for commit {prefix} under {results_dir}; run "
                         f"`asv run --record-samples {ref}^!` (or `asv continuous`) first")
    if len(hits) > 1:
        raise ValueError(f"several result files for commit {prefix}: "
                         f"{', '.join(map(str, hits))}; pass the file itself")
    return hits[0]


def _units(results_dir: Path) -> dict[str, str]:
    import json

    try:
        data = json.loads((results_dir / "benchmarks.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: v.get("unit", "") for k, v in data.items() if isinstance(v, dict)}


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def load_results(path: Path) -> ResultSet:
    """Every measured (finite) benchmark x parameter combination of an asv result file,
    with the statistics and samples asv stored for it."""
    from asv import util
    from asv.results import Results

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"asv result file {path} does not exist")
    try:
        res = Results.load(str(path))
    except (util.UserError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} is not a readable asv result file ({e}); it may be "
                         "truncated or from another tool: re-run asv") from None
    rows: dict[tuple[str, str], Measurement] = {}
    for name in res.get_all_result_keys():
        params = res.get_result_params(name) or []
        values = res.get_result_value(name, params)
        stats = res.get_result_stats(name, params)
        samples = res.get_result_samples(name, params)
        combos = [", ".join(c) for c in itertools.product(*params)] if params else [""]
        if not isinstance(values, list):
            values, stats, samples = [values], [stats], [samples]
        stats = stats if isinstance(stats, list) else [None] * len(values)
        samples = samples if isinstance(samples, list) else [None] * len(values)
        if not len(values) == len(combos) == len(stats) == len(samples):
            raise ValueError(f"{path}: benchmark {name!r} has {len(values)} results for "
                             f"{len(combos)} parameter combinations")
        version = res.benchmark_version.get(name)
        for combo, v, st, sm in zip(combos, values, stats, samples):
            if not _number(v):
                continue  # skipped, failed or not run
            ci = None
            if isinstance(st, dict) and _number(st.get("ci_99_a")) and _number(st.get("ci_99_b")):
                ci = (float(st["ci_99_a"]), float(st["ci_99_b"]))
            sm = tuple(float(x) for x in sm if _number(x)) if isinstance(sm, list) else None
            repeat = st.get("repeat") if isinstance(st, dict) else None
            rows[(name, combo)] = Measurement(float(v), ci, sm or None,
                                              int(repeat) if _number(repeat) else None, version)
    return ResultSet(path, res.commit_hash, str(res.params.get("machine", "?")), res.env_name,
                     rows, _units(path.parent.parent))


def is_different(base: Measurement, new: Measurement, alpha: float) -> tuple[bool, str]:
    """Whether asv's record tells ``new`` from ``base``, and the evidence, in words."""
    if base.samples and new.samples and len(base.samples) > 1 and len(new.samples) > 1:
        from scipy.stats import mannwhitneyu

        p = float(mannwhitneyu(new.samples, base.samples, alternative="two-sided").pvalue)
        if math.isnan(p):  # every sample equal on both sides
            p = 1.0 if set(base.samples) == set(new.samples) else 0.0
        return p < alpha, f"Mann-Whitney p={p:.2g} (n={len(base.samples)}/{len(new.samples)})"
    if base.exact and new.exact:
        return base.value != new.value, "exact values"
    (b0, b1), (n0, n1) = base.interval(), new.interval()
    apart = n0 > b1 or n1 < b0
    return apart, "99% intervals " + ("apart" if apart else "overlap")


def _ratio(base: float, new: float) -> float:
    if base == 0:
        return 1.0 if new == 0 else math.inf
    return new / base


def compare(base: ResultSet, new: ResultSet, threshold: float = 1.2, alpha: float = 0.01,
            bench: str | None = None, min_samples: int = 3) -> list[Row]:
    """One :class:`Row` per benchmark x parameter combination measured in both sets."""
    if not (_number(threshold) and threshold >= 1.0):
        raise ValueError(f"threshold must be a ratio >= 1 (e.g. 1.2 for 20% slower), got {threshold!r}")
    if not (_number(alpha) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a probability in (0, 1), e.g. 0.01, got {alpha!r}")
    try:
        pattern = re.compile(bench) if bench else None
    except re.error as e:
        raise ValueError(f"--bench {bench!r} is not a regular expression: {e}") from None
    rows = []
    for key in sorted(set(base.rows) & set(new.rows)):
        b, n = base.rows[key], new.rows[key]
        ratio = _ratio(b.value, n.value)
        if b.version and n.version and b.version != n.version:
            rows.append(Row(*key, b, n, ratio, "benchmark code differs", "changed"))
            continue
        if not (b.exact and n.exact) and min(b.n(), n.n()) < min_samples:
            rows.append(Row(*key, b, n, ratio, f"n={b.n()}/{n.n()} < {min_samples}", "few samples"))
            continue
        different, evidence = is_different(b, n, alpha)
        beyond = ratio > threshold or ratio < 1 / threshold
        if beyond and different:
            verdict = "REGRESSION" if ratio > 1 else "faster"
        else:
            verdict = "noise" if beyond else "ok"
        rows.append(Row(*key, b, n, ratio, evidence, verdict))
    # the ratio twins count even where --bench leaves them out of the table
    return [r for r in _attribute_drift(rows) if pattern is None or pattern.search(r.name)]


def _attribute_drift(rows: list[Row]) -> list[Row]:
    """An absolute timing that moved while its ratio to the interleaved ``torch.nn``
    baseline did not is the machine's speed changing between the two runs (another job
    taking shared caches and memory bandwidth), not the code: ``drift``, as is any
    move of the baseline itself. Without its ratio twin a timing keeps its verdict."""
    by_key = {(r.benchmark, r.params): r for r in rows}
    out = []
    for r in rows:
        twin_name, baseline = NORMALISED_BY.get(r.benchmark, (None, None))
        if twin_name is None or r.verdict not in ("REGRESSION", "faster"):
            out.append(r)
            continue
        values = r.params.split(", ")
        if baseline in values:
            out.append(replace(r, verdict="drift",
                               evidence=r.evidence + "; the torch.nn baseline itself"))
            continue
        twin = by_key.get((twin_name, r.params))
        if twin is not None and twin.verdict != r.verdict:
            out.append(replace(r, verdict="drift", evidence=r.evidence
                               + f"; vs torch.nn {twin.ratio:.3f}x: {twin.verdict}"))
        else:
            out.append(r)
    return out


def _fmt(x: float, unit: str) -> str:
    if unit == "seconds":
        return f"{x * 1e3:.4g}ms" if x < 1 else f"{x:.4g}s"
    if unit == "bytes":
        return f"{x / 2**20:.4g}MiB"
    return f"{x:.4g}"


def _fmt_m(m: Measurement, unit: str) -> str:
    if m.exact:
        return _fmt(m.value, unit)
    lo, hi = m.interval()
    return f"{_fmt(m.value, unit)} [{_fmt(lo, unit)}, {_fmt(hi, unit)}]"


def format_table(rows: Iterable[Row], units: dict[str, str] | None = None) -> str:
    """Every compared row: verdict, ratio, old and new (median [99% interval]), evidence."""
    units = units or {}

    def unit(name: str) -> str:  # asv's benchmarks.json, else what asv's prefixes mean
        return units.get(name) or ("seconds" if name.rsplit(".", 1)[-1].startswith("time_") else "")

    head = ("verdict", "ratio", "old", "new", "evidence", "benchmark")
    body = [(r.verdict, f"{r.ratio:.3f}", _fmt_m(r.base, unit(r.benchmark)),
             _fmt_m(r.new, unit(r.benchmark)), r.evidence, r.name) for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[-1]
                     for line in [head, *body])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fail when asv results got slower (or bigger) "
                                             "by more than the threshold and the noise.")
    ap.add_argument("base", help="asv result file or commit hash of the baseline")
    ap.add_argument("new", help="asv result file or commit hash to check")
    ap.add_argument("--threshold", type=float, default=1.2,
                    help="largest allowed ratio new/base (default 1.2)")
    ap.add_argument("--alpha", type=float, default=0.01,
                    help="significance level of the Mann-Whitney test (default 0.01)")
    ap.add_argument("--min-samples", type=int, default=3,
                    help="fewest samples per side for a sampled figure to be judged (default 3)")
    ap.add_argument("--bench", help="only benchmarks whose 'name(params)' matches this regex")
    ap.add_argument("--results-dir", type=Path, default=Path(".asv/results"))
    ap.add_argument("-q", "--quiet", action="store_true",
                    help="list only rows that are not 'ok'")
    args = ap.parse_args(argv)
    try:
        base = load_results(find_result_file(args.base, args.results_dir))
        new = load_results(find_result_file(args.new, args.results_dir))
        rows = compare(base, new, args.threshold, args.alpha, args.bench, args.min_samples)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    judged = [r for r in rows if r.verdict not in ("few samples", "changed")]
    if not judged:
        why = ("the two result sets share no measured benchmark" if not rows else
               f"none of the {len(rows)} shared rows can be judged (few samples or changed "
               "benchmark code): measure without --quick, with the same benchmark suite")
        print(f"error: {why}", file=sys.stderr)
        return 2
    print(f"base {base.commit[:8]} ({base.machine}, {base.env})  ->  new {new.commit[:8]} "
          f"({new.machine}, {new.env})")
    if (base.machine, base.env) != (new.machine, new.env):
        print("warning: different machines or environments: the intervals do not cover that")
    units = {**base.units, **new.units}
    print(format_table([r for r in rows if not args.quiet or r.verdict != "ok"], units))
    counts = {v: sum(r.verdict == v for r in rows) for v in VERDICTS}
    print(f"{len(rows)} rows: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
          + f" (threshold {args.threshold:g}x, alpha {args.alpha:g})")
    return 1 if counts["REGRESSION"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
