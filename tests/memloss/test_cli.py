"""``memloss train`` / ``memloss eval`` from the command line, at tiny size."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from memloss.cli import main
from memloss.core.runfiles import read_json, read_jsonl
from memloss.runs import load_run


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

#: what every tiny run sets besides the task's own tiny parameters
TINY_RUN = ["--set", "hidden_size=8", "--set", "batch_size=4", "--set", "eval_batch_size=4"]


def tiny_args(task: str) -> list[str]:
    """``--set`` arguments for a tiny run of ``task``: its own declared tiny parameters
    (:meth:`memloss.tasks.Task.tiny`, reading the committed fixtures) and a tiny net."""
    from memloss.tasks import TASKS

    params = TASKS.get(task).tiny(FIXTURES)
    sets = [f"task.{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in params.items()]
    return [a for s in sets for a in ("--set", s)] + TINY_RUN


def _registered() -> list[str]:
    from memloss.tasks import TASKS

    return TASKS.list()


@pytest.mark.parametrize("task", _registered())
def test_every_registered_task_trains_from_the_cli(task, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", task, *tiny_args(task), "--set", "epochs=1", "--set", "max_steps=3",
               "--set", "eval_every=2",
               "--set", "progress=false", "--set", "eval_modes=deterministic,mc",
               "--set", "mc_samples=2", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    run = load_run(out)
    final = read_json(out / "final.json")
    metric = run.task.metric
    assert metric in final["test"]["deterministic"] and metric in final["test"]["mc"]
    assert len(read_jsonl(out / "metrics.jsonl")) >= 1
    assert "test deterministic: " in capsys.readouterr().out


def test_regression_variant_of_sentiment_trains(tmp_path):
    root = FIXTURES / "pang-lee"
    out = tmp_path / "run"
    assert main(["train", "sentiment", "--set", "task.source=pang-lee", "--set", f"task.root={root}",
                 "--set", "task.segment_length=5", "--set", "hidden_size=8", "--set", "batch_size=4",
                 "--set", "eval_batch_size=4", "--set", "max_steps=2", "--set", "progress=false",
                 "--set", "eval_modes=deterministic,mc", "--set", "mc_samples=2",
                 "--scheme", "gal:p=0.2,p_recurrent=0.2", "--out", str(out)]) == 0
    final = read_json(out / "final.json")["test"]
    assert load_run(out).task.regression and "mse" in final["mc"]


def test_train_resume_and_eval_from_the_cli(tmp_path, capsys):
    straight, half = tmp_path / "a", tmp_path / "b"
    common = ["train", "copy", "--scheme", "zoneout:p_cell=0.2,p_hidden=0.1",
              *tiny_args("copy"), "--set", "optimizer=adam", "--set", "lr=0.01", "--set", "epochs=3",
              "--set", "progress=false"]
    assert main([*common, "--set", "max_steps=8", "--out", str(straight)]) == 0
    assert main([*common, "--set", "max_steps=3", "--out", str(half)]) == 0
    assert main(["train", "--resume", str(half), "--set", "max_steps=8"]) == 0
    a = load_run(straight, weights="last").net.state_dict()
    b = load_run(half, weights="last").net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    capsys.readouterr()
    assert main(["eval", str(half), "--mode", "mc", "--samples", "3", "--mode", "deterministic"]) == 0
    out = capsys.readouterr().out
    assert "test mc:" in out and "test deterministic:" in out
    final = read_json(half / "final.json")
    assert final["test"]["mc"]["samples"] == 3
    assert main(["eval", str(half), "--split", "train"]) == 0
    assert "deterministic" in read_json(half / "final.json")["train"]


def test_train_a_preset_from_the_cli(tmp_path, capsys):
    out = tmp_path / "p"
    rc = main(["train", "semeniuta-t1-short-moon-sequence-cpu", "--set", "task.train_size=64",
               "--set", "task.valid_size=8", "--set", "task.test_size=8", "--set", "hidden_size=8",
               "--set", "max_steps=2", "--set", "progress=false", "--out", str(out)])
    assert rc == 0
    cfg = read_json(out / "config.json")["train"]
    assert cfg["net"]["scheme"] == "moon:p=0.5,sampling=sequence,scaling=inverted"
    assert cfg["task_params"]["length"] == "short"
    assert "the paper (Semeniuta et al. 2016, Table 1) reports accuracy train 1, test 0.25" in \
        capsys.readouterr().out
    preset = read_json(out / "config.json")["info"]["preset"]
    assert preset["name"] == "semeniuta-t1-short-moon-sequence-cpu"
    assert preset["reported"] == {"train": 1.0, "test": 0.25} and preset["table"] == "Table 1"


@pytest.mark.parametrize("argv,message", [
    (["train", "no-such-task"], "unknown task or preset 'no-such-task'; "),
    (["train", "adding", "--set", "colour=red"], "unknown option 'colour' in --set; valid:"),
    (["train", "adding", "--set", "lr"], "--set takes key=value"),
    (["train", "adding", "--set", "lr=-1"], "TrainConfig.lr must be a number"),
    (["train", "adding", "--set", "epochs=two"], "epochs=.two.: must be an integer"),
    (["train", "adding", "--set", "optimizer=lbfgs"], "optimizer='lbfgs' is not one of sgd"),
    (["train", "adding", "--set", "task.colour=red"], "valid parameters: train_size"),
    (["train", "adding", "--set", "task.length=0"], "length must be an integer"),
    (["train", "adding", "--scheme", "moon:p=1.5"], "outside \\[0, 1\\)"),
    (["train", "adding", "--scheme", "bogus"], "unknown scheme 'bogus'"),
    (["train", "adding"], "--out RUN_DIR is required"),
    (["train"], "name a task or preset"),
])
def test_bad_command_lines_fail_before_training(argv, message, tmp_path, capsys):
    out = tmp_path / "never"
    full = argv + (["--out", str(out)] if "--out RUN_DIR" not in message else [])
    assert main(full) == 2
    import re
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


def test_existing_run_and_bad_resume(tmp_path, capsys):
    out = tmp_path / "r"
    base = ["train", "adding", *tiny_args("adding"), "--set", "max_steps=2", "--set", "progress=false"]
    assert main([*base, "--out", str(out)]) == 0
    assert main([*base, "--out", str(out)]) == 2
    assert "already holds a run; resume it with `memloss train --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--set", "optimizer=adam"]) == 2
    assert "cannot change ['optimizer']" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "nothing does not exist" in capsys.readouterr().err


def test_eval_errors(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", str(tmp_path), "--mode", "bayes"])
    assert "invalid choice: 'bayes'" in capsys.readouterr().err


def test_eval_records_which_weights_scored_a_split(tmp_path):
    out = tmp_path / "r"
    assert main(["train", "adding", *tiny_args("adding"), "--set", "epochs=2", "--set", "progress=false",
                 "--out", str(out)]) == 0
    assert read_json(out / "final.json")["weights"] == "best"
    assert main(["eval", str(out), "--weights", "last"]) == 0
    final = read_json(out / "final.json")
    assert final["test_weights"] == "last"
    last = load_run(out, weights="last")
    from memloss.tasks import evaluate
    assert final["test"]["deterministic"] == pytest.approx(evaluate(last.net, last.task, "test"))
    assert main(["eval", str(out)]) == 0
    assert "test_weights" not in read_json(out / "final.json")


def test_train_and_eval_say_which_weights_they_scored(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "adding", *tiny_args("adding"), "--set", "epochs=2", "--set",
                 "progress=false", "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--set", "epochs=4"]) == 0
    final = read_json(out / "final.json")
    assert final["weights"] == "best" and list(final["test"]) == ["deterministic"]
    printed = capsys.readouterr().out.splitlines()
    step, trained = final["weights_step"], final["step"]
    said = f"{out}: scored the best-validation weights of step {step}"
    assert printed[-2].startswith(said) and printed[-1].startswith(f"{out}: test deterministic:")
    if step < trained:
        assert f"not the last (step {trained})" in printed[-2]
    assert main(["eval", str(out), "--weights", "last"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"{out}: scored the last weights, of step {trained}"
    assert main(["eval", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(said)


def test_the_train_summary_names_earlier_best_weights_and_the_last_ones_score(capsys):
    from memloss.commands.train import _print

    final = {"weights": "best", "weights_step": 200, "step": 500, "metric": "accuracy",
             "test": {"deterministic": {"accuracy": 0.75, "loss": 0.5}},
             "by_weights": {"last": {"step": 500, "test": {"deterministic": {"accuracy": 0.5,
                                                                             "loss": 0.9}}}}}
    _print("runs/x", final, None)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("runs/x: scored the best-validation weights of step 200, not the last "
                        "(step 500): validation has not improved since step 200; the last "
                        "weights score deterministic accuracy=0.5 (final.json by_weights.last)")
    assert lines[1] == "runs/x: test deterministic: accuracy=0.75 loss=0.5"
    _print("runs/x", {**final, "weights": "last", "weights_step": 500}, None)
    assert capsys.readouterr().out.splitlines()[0] == "runs/x: scored the last weights, of step 500"
