"""Compare two asv result sets and fail on a slowdown (``asv compare`` always exits 0).

    .venv/bin/python -m benchmarks.compare BASE NEW [--threshold 1.2] [--bench REGEX]

``BASE`` and ``NEW`` are asv result files (``.asv/results/<machine>/<hash>-<env>.json``)
or commit hashes (prefixes of at least 8 characters) looked up under ``--results-dir``.
Every benchmark of asv is smaller-is-better (time, peak memory, tracked error rates), so a
ratio ``new / base`` above the threshold is a regression. Exit status: 0 none, 1 at least
one regression, 2 bad input. Not an asv benchmark module (asv collects nothing here).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Change", "load_results", "compare", "find_result_file", "main"]


@dataclass(frozen=True)
class Change:
    benchmark: str
    params: str
    base: float
    new: float

    @property
    def ratio(self) -> float:
        if self.base == 0:
            return math.inf if self.new > 0 else 1.0
        return self.new / self.base


def find_result_file(ref: str, results_dir: Path) -> Path:
    """A result file path, or the file of a commit hash under ``results_dir``."""
    p = Path(ref)
    if p.is_file():
        return p
    if not re.fullmatch(r"[0-9a-fA-F]{8,40}", ref):
        raise ValueError(f"{ref!r} is neither an asv result file nor a commit hash; pass a "
                         f".json from {results_dir}/<machine>/ or a hash of 8+ hex digits")
    hits = sorted(results_dir.glob(f"*/{ref[:8]}-*.json"))
    if not hits:
        raise ValueError(f"no asv results for commit {ref[:8]} under {results_dir}; run "
                         f"`asv run --python=same --set-commit-hash {ref}` first")
    if len(hits) > 1:
        raise ValueError(f"several result files for commit {ref[:8]}: "
                         f"{', '.join(map(str, hits))}; pass the file itself")
    return hits[0]


def load_results(path: Path) -> dict[tuple[str, str], float]:
    """``{(benchmark, "p1, p2, ..."): value}`` for every measured (non-null, finite) result."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"asv result file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"asv result file {path} is not valid JSON ({e}); it may be "
                         "truncated: re-run asv") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ValueError(f"{path} is not an asv result file (no 'results' mapping)")
    cols = data.get("result_columns", ["result", "params"])
    if "result" not in cols:
        raise ValueError(f"{path}: result_columns {cols} has no 'result' column")
    i_res, i_par = cols.index("result"), cols.index("params") if "params" in cols else None
    out: dict[tuple[str, str], float] = {}
    for name, row in data["results"].items():
        if not isinstance(row, list) or len(row) <= i_res:
            raise ValueError(f"{path}: malformed entry for benchmark {name!r}")
        values = row[i_res]
        params = row[i_par] if i_par is not None and len(row) > i_par else []
        combos = [", ".join(c) for c in itertools.product(*params)] if params else [""]
        if not isinstance(values, list):
            values = [values]
        if len(values) != len(combos):
            raise ValueError(f"{path}: benchmark {name!r} has {len(values)} results for "
                             f"{len(combos)} parameter combinations")
        for combo, v in zip(combos, values):
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out[(name, combo)] = float(v)
    return out


def compare(base: dict[tuple[str, str], float], new: dict[tuple[str, str], float],
            threshold: float, bench: str | None = None) -> tuple[list[Change], list[Change]]:
    """(regressions, all changes) over the benchmarks measured in both sets."""
    if not (isinstance(threshold, (int, float)) and threshold >= 1.0):
        raise ValueError(f"threshold must be a ratio >= 1 (e.g. 1.2 for 20% slower), got {threshold!r}")
    pattern = re.compile(bench) if bench else None
    changes = [Change(k[0], k[1], base[k], new[k]) for k in sorted(set(base) & set(new))
               if pattern is None or pattern.search(f"{k[0]}({k[1]})")]
    return [c for c in changes if c.ratio > threshold], changes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fail when asv results got slower (or bigger).")
    ap.add_argument("base", help="asv result file or commit hash of the baseline")
    ap.add_argument("new", help="asv result file or commit hash to check")
    ap.add_argument("--threshold", type=float, default=1.2,
                    help="largest allowed ratio new/base (default 1.2)")
    ap.add_argument("--bench", help="only benchmarks whose 'name(params)' matches this regex")
    ap.add_argument("--results-dir", type=Path, default=Path(".asv/results"))
    ap.add_argument("-v", "--verbose", action="store_true", help="list every change")
    args = ap.parse_args(argv)
    try:
        base = load_results(find_result_file(args.base, args.results_dir))
        new = load_results(find_result_file(args.new, args.results_dir))
        bad, changes = compare(base, new, args.threshold, args.bench)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not changes:
        print("error: the two result sets share no measured benchmark", file=sys.stderr)
        return 2
    for c in (changes if args.verbose else bad):
        flag = "REGRESSION" if c in bad else "ok"
        print(f"{flag:10s} {c.ratio:6.2f}x  {c.base:.4g} -> {c.new:.4g}  {c.benchmark}({c.params})")
    print(f"{len(bad)} of {len(changes)} benchmarks beyond {args.threshold:g}x")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
