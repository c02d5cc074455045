"""The regression gate (benchmarks.compare) on asv result files: files written through
asv's own Results API with chosen samples, and files stored from real runs on the shared
2-core machine (tests/benchmarks/data/, see docs/performance.md)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.compare import compare, find_result_file, format_table, load_results, main

asv_results = pytest.importorskip("asv.results", reason="asv is not installed: pip install -e '.[dev]'")
from asv.runner import BenchmarkResult  # noqa: E402

DATA = Path(__file__).parent / "data"
MACHINE = {"machine": "testbox", "arch": "x86_64", "cpu": "test", "num_cpu": "2", "os": "Linux",
           "ram": "1", "python": "3.11"}
TIME = "bench_layer.TimeLayer.time_forward_backward"
TRACK = "bench_memory.PeakMemory.track_peak_bytes"
PARAMS = [["'lstm'", "'gru'"]]


def _write(root: Path, commit: str, samples: dict[str, list], exact: dict[str, list] | None = None,
           record_samples: bool = True, version: str = "v1", params: list | None = None) -> Path:
    """An asv result file for ``commit``: a timing benchmark per ``samples`` entry (one
    list of samples per cell), a tracked value per ``exact`` entry (one value per cell)."""
    res = asv_results.Results(MACHINE, {}, commit, 0, "3.11", "env", {})
    params = params or PARAMS
    for name, per_cell in samples.items():
        res.add_result({"name": name, "version": version, "params": params},
                       BenchmarkResult(result=[True] * len(per_cell), samples=per_cell,
                                       number=[1] * len(per_cell), errcode=0, stderr="",
                                       profile=None),
                       record_samples=record_samples)
    for name, values in (exact or {}).items():
        res.add_result({"name": name, "version": version, "params": params},
                       BenchmarkResult(result=values, samples=[None] * len(values),
                                       number=[None] * len(values), errcode=0, stderr="",
                                       profile=None))
    res.save(str(root))
    return root / "testbox" / f"{commit[:8]}-env.json"


def _noisy(rng, median: float, n: int = 20, spread: float = 0.05) -> list[float]:
    return list(median * np.exp(rng.normal(0.0, spread, n)))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _rows(tmp_path, base, new, **kw):
    b = _write(tmp_path, "a" * 40, **base)
    n = _write(tmp_path, "b" * 40, **new)
    return {r.params: r for r in compare(load_results(b), load_results(n), **kw)}


def test_slowdown_beyond_threshold_and_noise_is_a_regression(tmp_path, rng, capsys):
    b = _write(tmp_path, "a" * 40, {TIME: [_noisy(rng, 0.05), _noisy(rng, 0.04)]})
    n = _write(tmp_path, "b" * 40, {TIME: [_noisy(rng, 0.075), _noisy(rng, 0.04)]})
    assert main([str(b), str(n)]) == 1
    out = capsys.readouterr().out
    lines = {line.split()[-1]: line for line in out.splitlines() if TIME in line}
    assert lines[f"{TIME}('lstm')"].startswith("REGRESSION")
    assert "Mann-Whitney" in lines[f"{TIME}('lstm')"]
    assert lines[f"{TIME}('gru')"].startswith("ok")
    assert "2 rows: 1 REGRESSION, 1 ok" in out
    assert main([str(b), str(n), "--threshold", "1.6"]) == 0  # 1.5x is within 1.6x


def test_bimodal_noise_beyond_the_threshold_is_not_a_regression(tmp_path):
    """A shared machine makes some calls 3x slower; the median can jump with them, but
    the samples say both runs come from the same mixture."""
    base = [1.0] * 4 + [3.0] * 3
    new = [1.0] * 3 + [3.0] * 4
    rows = _rows(tmp_path, dict(samples={TIME: [base, base]}), dict(samples={TIME: [new, base]}))
    assert rows["'lstm'"].ratio == 3.0
    assert rows["'lstm'"].verdict == "noise"
    assert rows["'gru'"].verdict == "ok"


def test_small_but_certain_change_is_ok_and_a_speedup_is_reported(tmp_path, rng):
    rows = _rows(tmp_path, dict(samples={TIME: [_noisy(rng, 1.0, spread=0.01)] * 2}),
                 dict(samples={TIME: [_noisy(rng, 1.1, spread=0.01), _noisy(rng, 0.6, spread=0.01)]}))
    assert rows["'lstm'"].verdict == "ok" and "p=" in rows["'lstm'"].evidence
    assert rows["'gru'"].verdict == "faster"


def test_without_samples_the_99_percent_intervals_decide(tmp_path, rng):
    """``asv run`` without --record-samples keeps only the statistics."""
    tight_base, tight_slow = _noisy(rng, 1.0, spread=0.01), _noisy(rng, 1.5, spread=0.01)
    wide = [0.6, 0.7, 1.5, 1.6, 1.7, 2.5, 2.6]  # median 1.6, interval covers the base's
    rows = _rows(tmp_path, dict(samples={TIME: [tight_base, tight_base]}, record_samples=False),
                 dict(samples={TIME: [tight_slow, wide]}, record_samples=False))
    assert rows["'lstm'"].base.samples is None and rows["'lstm'"].base.ci is not None
    assert rows["'lstm'"].verdict == "REGRESSION" and "apart" in rows["'lstm'"].evidence
    assert rows["'gru'"].verdict == "noise" and "overlap" in rows["'gru'"].evidence


def test_exact_values_are_their_own_interval(tmp_path):
    rows = _rows(tmp_path, dict(samples={}, exact={TRACK: [100, 100]}),
                 dict(samples={}, exact={TRACK: [130, 101]}))
    assert rows["'lstm'"].verdict == "REGRESSION" and rows["'lstm'"].evidence == "exact values"
    assert rows["'gru'"].verdict == "ok"


RATIO = "bench_layer.RatioToTorchNN.track_ratio_to_torch_nn"
PATHS = [["'torch.nn'", "'fused'", "'native'"]]


def test_machine_drift_is_told_from_a_slower_layer(tmp_path, rng):
    """Every absolute timing 1.5x slower (a busy machine): the interleaved ratios did
    not move, so only the native path, whose ratio moved too, is a regression."""
    base = {TIME: [_noisy(rng, t) for t in (1.0, 1.3, 1.0)],
            RATIO: [[1.0] * 20, _noisy(rng, 1.3), _noisy(rng, 1.0)]}
    new = {TIME: [_noisy(rng, 1.5 * t) for t in (1.0, 1.3, 1.5)],
           RATIO: [[1.0] * 20, _noisy(rng, 1.3), _noisy(rng, 1.5)]}
    rows = {(r.benchmark, r.params): r for r in compare(
        load_results(_write(tmp_path, "a" * 40, base, params=PATHS)),
        load_results(_write(tmp_path, "b" * 40, new, params=PATHS)))}
    assert rows[(TIME, "'torch.nn'")].verdict == "drift"
    assert "baseline itself" in rows[(TIME, "'torch.nn'")].evidence
    assert rows[(TIME, "'fused'")].verdict == "drift"
    assert rows[(TIME, "'fused'")].evidence.endswith("x: ok")
    assert rows[(RATIO, "'fused'")].verdict == "ok"
    assert rows[(TIME, "'native'")].verdict == "REGRESSION"
    assert rows[(RATIO, "'native'")].verdict == "REGRESSION"
    # --bench leaves the twins out of the table, not out of the judgement
    shown = compare(load_results(tmp_path / "testbox" / f"{'a' * 8}-env.json"),
                    load_results(tmp_path / "testbox" / f"{'b' * 8}-env.json"), bench="time_")
    assert {r.params: r.verdict for r in shown} == {"'torch.nn'": "drift", "'fused'": "drift",
                                                    "'native'": "REGRESSION"}
    # results without the ratio twins: an absolute timing is judged on its own
    alone = compare(load_results(_write(tmp_path, "c" * 40, {TIME: base[TIME]}, params=PATHS)),
                    load_results(_write(tmp_path, "d" * 40, {TIME: new[TIME]}, params=PATHS)))
    assert {r.params: r.verdict for r in alone} == {"'torch.nn'": "drift",
                                                    "'fused'": "REGRESSION",
                                                    "'native'": "REGRESSION"}


def test_quick_runs_and_changed_benchmarks_are_not_judged(tmp_path, capsys):
    b = _write(tmp_path, "a" * 40, {TIME: [[1.0], [1.0]]})
    n = _write(tmp_path, "b" * 40, {TIME: [[11.0], [1.0]]})  # --quick: one sample
    assert {r.verdict for r in compare(load_results(b), load_results(n))} == {"few samples"}
    assert main([str(b), str(n)]) == 2
    assert "none of the 2 shared rows can be judged" in capsys.readouterr().err
    c = _write(tmp_path, "c" * 40, {TIME: [[1.0] * 5, [1.0] * 5]}, version="v1")
    d = _write(tmp_path, "d" * 40, {TIME: [[2.0] * 5, [1.0] * 5]}, version="v2")
    assert {r.verdict for r in compare(load_results(c), load_results(d))} == {"changed"}


def test_bench_filter_and_table(tmp_path, rng):
    b = _write(tmp_path, "a" * 40, {TIME: [_noisy(rng, 1.0)] * 2}, exact={TRACK: [1, 1]})
    n = _write(tmp_path, "b" * 40, {TIME: [_noisy(rng, 2.0)] * 2}, exact={TRACK: [1, 1]})
    assert main([str(b), str(n), "--bench", "track_"]) == 0
    assert main([str(b), str(n), "--bench", "time_"]) == 1
    rows = compare(load_results(b), load_results(n), bench="track_")
    table = format_table(rows, {TRACK: "bytes"}).splitlines()
    assert table[0].split() == ["verdict", "ratio", "old", "new", "evidence", "benchmark"]
    assert len(table) == 3 and all("MiB" in line for line in table[1:])


@pytest.mark.parametrize("content,match", [
    ('{"results": {', "not a readable asv result file"),
    ("[]", "not a readable asv result file"),
    ('{"version": 2, "results": {}}', "not a readable asv result file"),
])
def test_corrupt_files_are_rejected(tmp_path, content, match, capsys):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(ValueError, match=match):
        load_results(p)
    assert main([str(p), str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    b = _write(tmp_path, "a" * 40, {TIME: [[1.0] * 5] * 2})
    assert main([str(b), str(tmp_path / "nope.json")]) == 2
    assert "neither an asv result file" in capsys.readouterr().err
    for opts, msg in ((["--threshold", "0.5"], "threshold"), (["--alpha", "2"], "alpha"),
                      (["--bench", "("], "not a regular expression")):
        assert main([str(b), str(b), *opts]) == 2
        assert msg in capsys.readouterr().err
    other = _write(tmp_path, "c" * 40, {"other.time_x": [[1.0] * 5] * 2})
    assert main([str(b), str(other)]) == 2
    assert "share no measured benchmark" in capsys.readouterr().err


def test_commit_hash_lookup(tmp_path):
    f = _write(tmp_path, "abcdef12" + "0" * 32, {TIME: [[1.0] * 5] * 2})
    assert find_result_file("abcdef1234", tmp_path) == f
    assert find_result_file("abcd", tmp_path) == f
    with pytest.raises(ValueError, match="no asv results for commit 12345678"):
        find_result_file("12345678", tmp_path)


# ---- stored results of real runs (asv continuous on this machine, see the docs) ----

def _stored(kind: str) -> tuple[Path, Path]:
    return DATA / kind / "base.json", DATA / kind / "new.json"


def test_stored_empty_commit_is_not_a_regression(tmp_path, capsys):
    base, new = _stored("empty-commit")
    assert main([str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert "REGRESSION" not in out
    rows = compare(load_results(base), load_results(new))
    assert len(rows) > 50
    # the ratio rows and the CPU timings carry asv's statistics and samples
    sampled = [r for r in rows if "RatioToTorchNN" in r.benchmark or "TimeLayer" in r.benchmark]
    assert sampled and all(r.base.samples and r.new.ci for r in sampled)
    exact = [r for r in rows if "PeakMemory" in r.benchmark or "Quality" in r.benchmark]
    assert exact and all(r.base.exact and r.ratio == 1.0 for r in exact)


def test_stored_injected_slowdown_is_caught():
    """Recurrent.forward+backward made 1.5x slower: every native/fused ratio row is a
    regression (in this run two of the seven reference-path ratios moved only 1.10x and
    1.16x), and nothing that does not run Recurrent is."""
    base, new = _stored("slowdown")
    rows = compare(load_results(base), load_results(new))
    fast = [r for r in rows if "RatioToTorchNN" in r.benchmark and "'reference'" not in r.params]
    assert len(fast) == 9 and all(r.verdict == "REGRESSION" for r in fast), \
        [(r.name, r.ratio, r.evidence) for r in fast if r.verdict != "REGRESSION"]
    flagged = [r for r in rows if r.verdict == "REGRESSION"]
    assert all("'torch.nn'" not in r.params and r.benchmark.startswith("bench_layer.")
               for r in flagged)
    assert main([str(base), str(new)]) == 1


def test_stored_results_found_by_commit_under_a_results_dir(tmp_path):
    base, _ = _stored("empty-commit")
    commit = json.loads(base.read_text())["commit_hash"]
    (tmp_path / "vm").mkdir()
    shutil.copy(base, tmp_path / "vm" / f"{commit[:8]}-env.json")
    assert find_result_file(commit[:10], tmp_path) == tmp_path / "vm" / f"{commit[:8]}-env.json"
