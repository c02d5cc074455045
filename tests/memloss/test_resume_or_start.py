"""``memloss train --resume-or-start`` and the ``threads`` option."""
from __future__ import annotations

import pytest
import torch

from memloss.cli import main
from memloss.config import TrainConfig
from memloss.core.runfiles import read_checkpoint, read_json, write_json
from memloss.training import Callback, resume_or_start, train
from memloss.training.resume import run_state

from .conftest import TINY_TO


def test_absent_finished_and_interrupted_runs(tmp_path, tiny_to_config, capsys):
    out = tmp_path / "run"
    args = ["train", "temporal-order", *TINY_TO, "--set", "epochs=2", "--out", str(out),
            "--resume-or-start"]
    assert main(args) == 0 and run_state(out) == "finished"
    stamp = (out / "final.json").stat().st_mtime_ns
    assert main(args) == 0  # finished: left as it is
    assert (out / "final.json").stat().st_mtime_ns == stamp
    assert read_json(out / "config.json")["resumed"] == []
    # a finished run of another setup is never overwritten
    assert main([*args, "--set", "lr=0.5"]) == 2
    assert "lr differ" in capsys.readouterr().err


def test_an_interrupted_run_resumes_exactly(tmp_path, tiny_to_config):
    cfg = tiny_to_config.replace(epochs=None, max_steps=6, eval_every=2)
    straight = train(cfg, tmp_path / "straight").path
    half = train(cfg.replace(max_steps=4), tmp_path / "half").path
    (half / "final.json").unlink()  # as if killed after the checkpoint at step 4
    assert run_state(half) == "interrupted"
    outcome = resume_or_start(cfg, half)
    assert outcome.action == "resumed"
    a, b = read_checkpoint(straight).weights(), read_checkpoint(half).weights()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert read_json(straight / "final.json") == read_json(half / "final.json")


def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path, tiny_to_config):
    out = tmp_path / "run"
    out.mkdir()
    write_json(out / "config.json", {"train": tiny_to_config.to_dict(), "net": {}})
    assert run_state(out) == "unstarted"
    assert resume_or_start(tiny_to_config, out).action == "started"
    assert run_state(out) == "finished"
    other = tmp_path / "other"
    other.mkdir()
    write_json(other / "config.json",
               {"train": tiny_to_config.replace(lr=0.5).to_dict(), "net": {}})
    with pytest.raises(ValueError, match="start of another run .*differs in lr"):
        resume_or_start(tiny_to_config, other)


class _Threads(Callback):
    seen: list[int] = []

    def on_step_end(self, trainer, loss):
        self.seen.append(torch.get_num_threads())


def test_threads_set_torch_threads_while_training_only(tmp_path, tiny_to_config):
    before = torch.get_num_threads()
    hook = _Threads()
    train(tiny_to_config.replace(threads=1), tmp_path / "r", callbacks=[hook])
    assert set(hook.seen) == {1} and torch.get_num_threads() == before
    assert read_json(tmp_path / "r" / "config.json")["train"]["threads"] == 1
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        TrainConfig(task="adding", threads=0)
