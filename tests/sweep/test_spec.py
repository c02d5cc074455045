"""Grid files, run names and the paper-table suites (no training)."""
from __future__ import annotations

import pytest

from memloss.cli import main
from memloss.sweep import grid_runs, load_grid, parse_seeds, spec_runs
from memloss.sweep.suites import all_suites
import memloss.sweep.suites as suites_mod

GRID = """
task = "temporal-order"
scheme = ["semeniuta:p=0.25", "moon:p=0.25,sampling=sequence"]
seed = [0, 1]
[set]
hidden_size = 16
epochs = 1
optimizer = "adam"
lr = 0.01
task.length = ["short", 20]
"""


def test_a_grid_crosses_its_lists_and_names_runs_by_what_varies(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    runs = grid_runs(load_grid(path))
    assert len(runs) == 2 * 2 * 2
    names = [r.name for r in runs]
    assert names[:4] == ["semeniuta-p0.25_length-short_seed-0", "semeniuta-p0.25_length-short_seed-1",
                         "semeniuta-p0.25_length-20_seed-0", "semeniuta-p0.25_length-20_seed-1"]
    assert names[4] == "moon-p0.25-sampling-sequence_length-short_seed-0"
    assert len(set(names)) == len(names)
    first = runs[0]
    assert first.target == "temporal-order" and first.scheme == "semeniuta:p=0.25"
    assert first.sets == ("hidden_size=16", "epochs=1", "optimizer=adam", "lr=0.01",
                          "task.length=short", "seed=0")
    assert first.argv("D/x") == ["memloss", "train", "temporal-order", "--scheme",
                                 "semeniuta:p=0.25", *[a for s in first.sets for a in ("--set", s)],
                                 "--out", "D/x", "--resume-or-start"]
    # names are deterministic: the same grid gives the same names
    assert [r.name for r in grid_runs(load_grid(path))] == names


def test_names_stay_distinct_when_tokens_clash():
    runs = grid_runs({"task": "temporal-order", "set": {"task.length": ["a b", "a-b"]}})
    assert len({r.name for r in runs}) == 2


def test_the_seed_is_always_named():
    assert [r.name for r in grid_runs({"task": "adding", "set": {"lr": [0.1, 0.2]}})] == \
        ["lr-0.1_seed-0", "lr-0.2_seed-0"]
    assert [r.name for r in grid_runs({"task": "adding"})] == ["adding_seed-0"]


@pytest.mark.parametrize("grid, message", [
    ({"task": "adding", "preset": "x"}, "exactly one of task"),
    ({"tasks": "adding"}, "unknown key 'tasks'"),
    ({"task": "adding", "scheme": []}, "empty list"),
    ({"task": "adding", "seed": [-1]}, "seed must be an integer"),
    ({"task": "adding", "set": {"seed": 1}}, "top-level key"),
])
def test_bad_grids_fail_with_one_line(grid, message):
    with pytest.raises(ValueError, match=message):
        grid_runs(grid)


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("task = \n")
    with pytest.raises(ValueError, match="bad.toml is not valid TOML"):
        load_grid(path)


def test_seeds_option():
    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("0,5,7") == [0, 5, 7]
    for bad in ("x", "0,0", "-1", "0"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def test_one_suite_per_paper_table_and_a_cpu_variant_of_each():
    from memloss.presets import PRESETS

    found = all_suites()
    t1 = [n for n in PRESETS.list() if n.startswith("semeniuta-t1-")]
    assert set(found["semeniuta-t1"].presets) == {n for n in t1 if not n.endswith("-cpu")}
    assert set(found["semeniuta-t1-cpu"].presets) == {n for n in t1 if n.endswith("-cpu")}
    for name in ("semeniuta-t2", "gal-t1", "krueger-t1", "krueger-t2", "krueger-t3", "zaremba-t1"):
        assert name in found and f"{name}-cpu" in found
    # every preset is in exactly one table's suite
    listed = [p for s in found.values() if not s.whole for p in s.presets]
    assert sorted(listed) == sorted(PRESETS.list())
    runs = spec_runs("semeniuta-t1-cpu", seeds=[0, 1, 2])
    assert len(runs) == 3 * len(t1) // 2
    assert runs[0].name == "short-moon-step_seed-0"
    assert runs[0].target == "semeniuta-t1-short-moon-step-cpu" and runs[0].sets == ("seed=0",)


def test_a_findings_suite_holds_the_compared_rows_and_keeps_the_tables_run_names():
    from memloss.presets.findings import FINDINGS, row_split

    found = all_suites()
    part, whole = found["semeniuta-t2-cpu-findings"], found["semeniuta-t2-cpu"]
    compared = {row_split(r, f.split)[0] + "-cpu" for f in FINDINGS.values()
                for r in f.rows() + f.baselines}
    assert set(part.presets) == set(whole.presets) & compared
    assert "semeniuta-t2-baseline-cpu" in part.presets
    assert "semeniuta-t2-fd-moon-0.5-sequence-cpu" not in part.presets  # no finding compares it
    names = {(r.target, r.sets): r.name for r in whole.runs([0, 1])}
    runs = part.runs([0, 1])
    assert len(runs) == 2 * len(part.presets)
    assert all(names[(r.target, r.sets)] == r.name for r in runs)
    assert "semeniuta-t1-cpu-findings" in found and "semeniuta-t1-findings" in found


def test_table1_runs_keep_their_names_when_rows_are_added():
    """Runs of the first ten Table 1 rows keep the names an earlier sweep gave them, so a
    sweep of the grown suite into the same directory trains only the new rows."""
    names = {r.name for r in spec_runs("semeniuta-t1-cpu", seeds=[0])}
    first = {f"{n}-{f}-{s}_seed-0" for n in ("short", "medium")
             for f, s in (("moon", "step"), ("moon", "sequence"), ("gal", "sequence"),
                          ("ours", "step"), ("ours", "sequence"))}
    assert first <= names and names - first == {"short-gal-step_seed-0", "medium-gal-step_seed-0"}


def test_every_table_has_a_suite_that_says_what_it_trains_on():
    found = all_suites()
    for name in ("semeniuta-t3", "semeniuta-t4", "semeniuta-t5", "gal-figure-2", "gal-figure-3",
                 "gal-figure-4"):
        assert name in found and f"{name}-cpu" in found
    assert "Shakespeare" in found["semeniuta-t2-cpu"].describe()
    assert "Penn Treebank" in found["semeniuta-t2"].describe()
    assert "fashion-mnist" in found["krueger-t1-cpu"].describe()
    assert "user places" in found["semeniuta-t4-cpu"].describe()


def test_a_new_preset_joins_its_tables_suite(monkeypatch):
    from dataclasses import replace

    from memloss.core.registry import Registry
    from memloss.presets import PRESETS

    reg = Registry("preset")
    for name in PRESETS.list():
        reg.register(name)(PRESETS.get(name))
    base = PRESETS.get("krueger-t3-baseline")
    reg.register("krueger-t3-extra")(replace(base, name="krueger-t3-extra", row="an extra row"))
    monkeypatch.setattr(suites_mod, "PRESETS", reg)
    assert "krueger-t3-extra" in all_suites()["krueger-t3"].presets


def test_sweep_dry_run_and_unknown_spec(capsys):
    assert main(["sweep", "semeniuta-t1-cpu", "--seeds", "2", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 24 and lines[0].startswith("short-moon-step_seed-0: memloss train "
                                                    "semeniuta-t1-short-moon-step-cpu")
    assert main(["sweep", "no-such-suite", "--out", "x"]) == 2
    assert "unknown suite 'no-such-suite'" in capsys.readouterr().err
    assert main(["sweep", "--list-suites"]) == 0
    assert "semeniuta-t1-cpu" in capsys.readouterr().out
