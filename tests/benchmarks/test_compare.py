"""benchmarks.compare on synthetic asv result files."""
from __future__ import annotations

import json
import math

import pytest

from benchmarks.compare import compare, find_result_file, load_results, main

COLS = ["result", "params", "version", "started_at", "duration"]


def _write(path, results):
    path.write_text(json.dumps({"commit_hash": "0" * 40, "version": 2, "result_columns": COLS,
                                "results": results}))
    return path


def _pair(tmp_path, new_time):
    params = [["'lstm'", "'gru'"], ["256", "650"]]
    base = _write(tmp_path / "base.json", {
        "bench_layer.TimeLayer.time_forward_backward": [[1.0, 2.0, None, 4.0], params, "v", 0, 1],
        "bench_quality.Quality.track_error_rate": [[0.1, 0.2, 0.3, 0.4], params, "v", 0, 1],
        "bench_memory.PeakHostMemory.peakmem_forward_backward": [100.0, [], "v", 0, 1],
    })
    new = _write(tmp_path / "new.json", {
        "bench_layer.TimeLayer.time_forward_backward": [[1.0, new_time, 3.0, math.nan], params, "v", 0, 1],
        "bench_quality.Quality.track_error_rate": [[0.1, 0.2, 0.3, 0.4], params, "v", 0, 1],
        "bench_memory.PeakHostMemory.peakmem_forward_backward": [110.0, [], "v", 0, 1],
    })
    return base, new


def test_slowdown_beyond_threshold_fails(tmp_path, capsys):
    base, new = _pair(tmp_path, new_time=3.0)  # lstm/650: 2.0 -> 3.0 is 1.5x
    assert main([str(base), str(new), "--threshold", "1.2"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "time_forward_backward('lstm', 650)" in out
    assert main([str(base), str(new), "--threshold", "1.6"]) == 0


def test_no_slowdown_passes_and_skipped_combinations_are_ignored(tmp_path):
    base, new = _pair(tmp_path, new_time=2.1)
    bad, changes = compare(load_results(base), load_results(new), 1.2)
    assert bad == []
    # None in base and NaN in new are not measured: 2 time + 4 track + 1 peakmem
    assert len(changes) == 7


def test_bench_filter(tmp_path):
    base, new = _pair(tmp_path, new_time=3.0)
    assert main([str(base), str(new), "--bench", "track_"]) == 0
    assert main([str(base), str(new), "--bench", "time_"]) == 1


@pytest.mark.parametrize("content,match", [
    ('{"results": {', "not valid JSON"), ("[]", "not an asv result file"),
    ('{"results": {"a": [[1.0, 2.0], [["1"]]]}}', "2 results for 1 parameter"),
])
def test_corrupt_files_are_rejected(tmp_path, content, match):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(ValueError, match=match):
        load_results(p)


def test_missing_file_and_bad_threshold(tmp_path, capsys):
    base, _ = _pair(tmp_path, 1.0)
    assert main([str(base), str(tmp_path / "nope.json")]) == 2
    assert "neither an asv result file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="threshold"):
        compare({}, {}, 0.5)


def test_commit_hash_lookup(tmp_path):
    d = tmp_path / "results" / "machine"
    d.mkdir(parents=True)
    f = _write(d / "abcdef12-existing-py.json", {"x.time_a": [1.0, [], "v", 0, 1]})
    assert find_result_file("abcdef1234", tmp_path / "results") == f
    with pytest.raises(ValueError, match="no asv results"):
        find_result_file("12345678", tmp_path / "results")
