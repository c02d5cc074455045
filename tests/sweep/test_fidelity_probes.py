"""tools/fidelity_probes.py: the key rows chosen by scheme, the CSV, the sentence computed from
the numbers, --from-csv reproducing the Markdown, one figure per table."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from memloss.presets import PRESETS
from tests.sweep.tools import load_tool



def _tool():
    return load_tool("fidelity_probes")


def _numbers(ratios: dict[str, list[float]]) -> pd.DataFrame:
    """A CSV's frame for Semeniuta Table 2 rows with the given deterministic/training-mode
    state ratios per seed (the other numbers made up around them)."""
    rows = []
    for preset, values in ratios.items():
        p = PRESETS.get(preset)
        spec = p.settings["scheme"] if "scheme" in p.settings else "none"
        info = {"paper": p.paper.split(",")[0], "table": p.table, "cpu": True, "row": p.row,
                "preset": preset, "family": _tool().family(spec), "scheme": spec,
                "weights": "best"}
        for seed, r in enumerate(values):
            for q, m, v in (("state_ratio", "deterministic", r),
                            ("state_ratio", "other-scaling", r / 2),
                            ("state_factor", "deterministic", 1.0 + 0.01 * seed),
                            ("state_factor", "train-mode", 1.0),
                            ("grad_slope", "deterministic", 0.05),
                            ("grad_slope", "train-mode", 0.04),
                            ("perplexity", "deterministic", 100 / r), ("perplexity", "mc", 90.0),
                            ("perplexity", "train-mode", 95.0), ("steps", "", 140.0),
                            ("scaling_steps", "", 140.0), ("cpu_seconds", "", 9.5)):
                rows.append({**info, "seed": seed, "quantity": q, "mode": m, "value": v})
    return pd.DataFrame(rows, columns=_tool().COLUMNS)


T2 = {"semeniuta-t2-baseline-cpu": [1.0, 1.0, 1.0],
      "semeniuta-t2-moon-0.5-sequence-cpu": [0.31, 0.42, 0.37],
      "semeniuta-t2-ours-0.5-step-cpu": [1.01, 0.98, 1.0]}


def test_sentence_names_the_row_whose_state_fades():
    tool = _tool()
    frame = _numbers(T2)
    text = tool.sentence(frame)
    moon = PRESETS.get("semeniuta-t2-moon-0.5-sequence-cpu").row
    assert text == (f"Under deterministic inference the memory state of {moon} "
                    "(`moon:p=0.5,sampling=sequence`) fades to 0.37x its training-mode norm after "
                    "140 steps (0.31-0.42x over 3 seeds; test perplexity 277 deterministic, 90 MC), "
                    "while the other key rows keep 0.98-1.01x.")
    # no row below 0.9x in every seed: the sentence says none fades
    calm = tool.sentence(_numbers({**T2, "semeniuta-t2-moon-0.5-sequence-cpu": [0.5, 0.95, 0.6]}))
    assert calm.startswith("No key row's memory state fades at test") and "0.5-1.01x" in calm
    # a ratio near 0 because the training-mode state explodes is said to be that
    blown = _numbers({**T2, "semeniuta-t2-moon-0.5-sequence-cpu": [1e-6, 1e-6, 1e-6]})
    at = (blown["row"] == moon) & (blown["quantity"] == "state_factor") & (blown["mode"] == "train-mode")
    blown.loc[at, "value"] = 1.32
    assert ("fades to 0.00x its training-mode norm after 140 steps (1e-06x over 3 seeds; not a fade "
            "at test but the training-mode state growing 1.32x per step; test perplexity"
            in tool.sentence(blown))
    grows = tool.sentence(_numbers({**T2, "semeniuta-t2-moon-0.5-sequence-cpu": [1.5, 1.6, 1.7]}))
    assert grows.startswith(f"Under deterministic inference the memory state of {moon} "
                            "(`moon:p=0.5,sampling=sequence`) grows to 1.60x")


def test_notes_give_each_probed_length_of_a_table_whose_rows_differ():
    tool = _tool()
    frame = _numbers(T2)
    assert "16 test sequences of 140 steps from a zero state" in tool._notes(frame, "perplexity", [])
    moon = PRESETS.get("semeniuta-t2-moon-0.5-sequence-cpu").row
    frame.loc[(frame["row"] == moon) & frame["quantity"].isin(["steps", "scaling_steps"]),
              "value"] = 60.0
    notes = tool._notes(frame, "perplexity", [])
    assert "of 60 or 140 steps (each row its own length) from a zero state" in notes
    assert "perplexity on 64 test sequences of 60 or 140 steps (each row its own length)," in notes


def test_csv_round_trip_reproduces_markdown(tmp_path, capsys):
    tool = _tool()
    frame = _numbers(T2)
    csv = tmp_path / "probes.csv"
    frame.to_csv(csv, index=False)
    read = tool.read_csv(csv)
    assert list(read.columns) == tool.COLUMNS
    text = tool.markdown(frame)
    assert tool.markdown(read) == text
    assert "(3 rows)" in text and "| 0.367 [0.31-0.42] |" in text
    assert tool.main(["--from-csv", str(csv)]) == 0
    assert capsys.readouterr().out == text
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit):
        tool.main(["--from-csv", str(bad)])
    assert "lacks the columns" in capsys.readouterr().err


def _config_only(path: Path, preset: str, seed: int) -> None:
    p = PRESETS.get(preset)
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({
        "train": {"task": "text-word", "seed": seed},
        "net": {"scheme": p.settings.get("scheme", "none")},
        "info": {"preset": p.record()}}))
    (path / "final.json").write_text(json.dumps({"weights": "best"}))


def test_key_rows_are_chosen_by_scheme(tmp_path, capsys):
    tool = _tool()
    names = [n for n in PRESETS.list() if n.startswith("semeniuta-t2-") and n.endswith("-cpu")]
    for n in names:
        _config_only(tmp_path / n, n, 0)
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "config.json").write_text("{}")
    chosen = {info["preset"] for _, info in tool.key_runs(sorted(tmp_path.iterdir()))}
    # the paper's own sampling, no forward dropout, the highest rate, per scheme family
    assert chosen == {"semeniuta-t2-baseline-cpu", "semeniuta-t2-fd-baseline-cpu",
                      "semeniuta-t2-moon-0.5-sequence-cpu", "semeniuta-t2-ours-0.5-step-cpu",
                      "semeniuta-t2-gal-0.5-sequence-cpu"}
    assert len(tool.key_runs(sorted(tmp_path.iterdir()), "all")) == len(names)
    assert tool.family("moon:p=0.5+zaremba:p=0.2") == "moon"
    assert tool.family("zaremba:p=0.5") == "zaremba" and tool.family("none") == "none"
    # refused before anything is probed: a run given twice, --out inside a run
    twice = tmp_path / "again" / "semeniuta-t2-baseline-cpu"
    _config_only(twice, "semeniuta-t2-baseline-cpu", 0)
    for argv, says in (([str(tmp_path), "--out", str(tmp_path / "semeniuta-t2-baseline-cpu" / "p")],
                        "lies inside the run"),
                       ([str(tmp_path), "--out", str(tmp_path.parent / "probes")],
                        "give each run once")):
        with pytest.raises(SystemExit):
            tool.main(argv)
        assert says in capsys.readouterr().err


@pytest.mark.slow
def test_probes_two_tiny_trained_runs(tmp_path, capsys, monkeypatch):
    """Three trained runs (no dropout and Moon per sequence of one table; output zoneout of
    another, made one the step-wise probes refuse) probed end to end."""
    import memloss.diagnostics.data as data
    from memloss.diagnostics.unroll import StepwiseError
    from memloss.resolve import preset_info
    from memloss.training import TrainConfig, train

    def refuse(net, inputs, owner, **kw):  # as for a net that cannot be run step by step
        if "output-zoneout" in net.config.scheme.spec:
            raise StepwiseError(f"{owner}: cannot probe it step by step")
        return check(net, inputs, owner, **kw)

    check = data.check_stepwise
    monkeypatch.setattr(data, "check_stepwise", refuse)

    sweep = tmp_path / "sweep"
    for preset, scheme in (("semeniuta-t2-baseline-cpu", "none"),
                           ("semeniuta-t2-moon-0.5-sequence-cpu", "moon:p=0.5,sampling=sequence"),
                           ("krueger-t3-output-zoneout-0.25-cpu", "output-zoneout:p=0.25")):
        cfg = TrainConfig(task="temporal-order",
                          task_params={"length": 6, "train_size": 64, "valid_size": 16,
                                       "test_size": 32},
                          optimizer="adam", lr=0.01, epochs=1, batch_size=32, progress=False,
                          net=dict(hidden_size=8, scheme=scheme))
        train(cfg, sweep / f"{preset}_seed-0", info=preset_info(preset))
    tool = _tool()
    csv, out = tmp_path / "probes.csv", tmp_path / "out"
    argv = [str(sweep), "--out", str(out), "--csv", str(csv), "--figures", str(tmp_path / "img")]
    assert tool.main(argv) == 0
    text = capsys.readouterr().out
    frame = pd.read_csv(csv, keep_default_na=False)
    assert list(frame.columns) == tool.COLUMNS
    assert set(frame["preset"]) == {"semeniuta-t2-baseline-cpu",
                                    "semeniuta-t2-moon-0.5-sequence-cpu",
                                    "krueger-t3-output-zoneout-0.25-cpu"}
    zoned = frame[frame["family"] == "output-zoneout"]
    assert set(zoned["quantity"]) == {"accuracy", "scaling_steps", "cpu_seconds"}
    assert "State-decay cannot step through Recurrent dropout with output zoneout" in text
    want = {("state_ratio", "deterministic"), ("state_ratio", "other-scaling"),
            ("state_factor", "deterministic"), ("grad_slope", "deterministic"),
            ("grad_slope", "train-mode"), ("accuracy", "deterministic"), ("accuracy", "mc"),
            ("accuracy", "train-mode"), ("steps", ""), ("cpu_seconds", "")}
    for preset, group in frame[frame["family"] != "output-zoneout"].groupby("preset"):
        assert want <= set(zip(group["quantity"], group["mode"])), preset
    steps = frame[frame["quantity"] == "steps"]["value"]
    assert set(steps) == {24.0}  # 4 x the trained 6 steps
    none = frame[(frame["scheme"] == "none") & (frame["quantity"] == "state_ratio")]
    assert all(math.isclose(v, 1.0) for v in none["value"])  # no masks: the same state
    assert (out / "sweep" / "semeniuta-t2-baseline-cpu_seed-0" / "state-decay.json").is_file()
    assert not (sweep / "semeniuta-t2-baseline-cpu_seed-0" / "diagnostics").exists()
    assert sorted(p.name for p in (tmp_path / "img").iterdir()) == [
        "fidelity-probes-krueger-table-3-cpu.png", "fidelity-probes-semeniuta-table-2-cpu.png"]
    assert tool.main(["--from-csv", str(csv)]) == 0
    assert capsys.readouterr().out == text
    # probed again: every probe's file is reused (not written again)
    files = sorted(f for f in out.rglob("*.json") if f.name != "cpu_seconds.json")
    before = [f.stat().st_mtime_ns for f in files]
    assert tool.main(argv + ["--csv", str(tmp_path / "again.csv")]) == 0
    assert [f.stat().st_mtime_ns for f in files] == before
    # another length: the step-wise probes run again
    assert tool.main(argv + ["--csv", str(tmp_path / "x2.csv"), "--steps-factor", "2"]) == 0
    x2 = pd.read_csv(tmp_path / "x2.csv", keep_default_na=False)
    assert set(x2[x2["quantity"] == "steps"]["value"]) == {12.0}
    again = pd.read_csv(tmp_path / "again.csv", keep_default_na=False)
    keep = again["quantity"] != "cpu_seconds"
    pd.testing.assert_frame_equal(again[keep].reset_index(drop=True),
                                  frame[keep].reset_index(drop=True))


def test_probes_measure_sequences_longer_than_trained():
    from memloss.tasks import make_task
    from memloss.tasks.text import TextWord

    tool = _tool()
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    words = make_task("text-word", **TextWord.tiny(fixtures))
    assert tool._steps(tool._longer(words, 4.0)) == 4 * words.bptt  # a stream's bptt
    order = make_task("temporal-order", length=6, train_size=8, valid_size=8, test_size=8)
    assert tool._steps(tool._longer(order, 2.0)) == 12  # a task's length
