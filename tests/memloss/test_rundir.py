"""Run directories: atomic writes, loading, and clear errors on missing or corrupt files."""
from __future__ import annotations

import json
import os

import pytest
import torch

from memloss.core import runfiles as rd
from memloss.runs import load_run
from memloss.training import train


def _no_temp_files(folder):
    return not [p for p in os.listdir(folder) if p.endswith(".tmp")]


def test_write_json_is_atomic(tmp_path):
    path = tmp_path / "final.json"
    rd.write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        rd.write_json(path, {"a": object()})  # not serialisable: fails before touching the file
    assert json.loads(path.read_text()) == {"a": 1} and _no_temp_files(tmp_path)


def test_atomic_write_survives_a_failure_mid_write(tmp_path):
    path = tmp_path / "model.safetensors"
    rd.save_weights(path, {"w": torch.ones(3)})

    def half_then_crash(tmp):
        with open(tmp, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        rd.atomic_write(path, half_then_crash)
    assert torch.equal(rd.load_weights(path)["w"], torch.ones(3)) and _no_temp_files(tmp_path)


def test_weights_and_state_round_trip(tmp_path):
    rd.save_weights(tmp_path / "w.safetensors", {"a": torch.arange(4.0)}, {"step": "7"})
    assert torch.equal(rd.load_weights(tmp_path / "w.safetensors")["a"], torch.arange(4.0))
    assert rd.weights_metadata(tmp_path / "w.safetensors") == {"step": "7"}
    state = {"x": torch.ones(2), "loop": {"step": 3, "best": None, "lr": 0.5}}
    rd.save_state(tmp_path / "s.pt", state)
    back = rd.load_state(tmp_path / "s.pt")
    assert back["loop"] == state["loop"] and torch.equal(back["x"], state["x"])


def test_append_jsonl(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rd.append_jsonl(path, {"step": 1})
    rd.append_jsonl(path, {"step": 2})
    assert rd.read_jsonl(path) == [{"step": 1}, {"step": 2}]
    path.write_text('{"step": 1}\n{"step": 2')
    with pytest.raises(rd.RunDirError, match="line 2 is not valid JSON"):
        rd.read_jsonl(path)


@pytest.fixture
def run(tmp_path, tiny_to_config):
    return train(tiny_to_config.replace(epochs=1), tmp_path / "run").path


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_weights_give_a_clear_error(run):
    _truncate(run / "model.safetensors")
    with pytest.raises(rd.RunDirError, match="model.safetensors is truncated or corrupt"):
        load_run(run, weights="last")


def test_corrupt_weights_give_a_clear_error(run):
    (run / "best.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(rd.RunDirError, match="best.safetensors is truncated or corrupt"):
        load_run(run, weights="best")


def test_truncated_trainer_state_blocks_resume(run, tiny_to_config):
    _truncate(run / "trainer_state.pt")
    with pytest.raises(rd.RunDirError, match="trainer_state.pt is truncated or corrupt"):
        train(tiny_to_config.replace(epochs=2), run, resume=True)


def test_mismatched_checkpoint_pair_blocks_resume(run, tiny_to_config):
    rd.save_weights(run / "model.safetensors", rd.load_weights(run / "model.safetensors"),
                    {"step": "99"})
    with pytest.raises(rd.RunDirError, match="disagree"):
        train(tiny_to_config.replace(epochs=2), run, resume=True)


def test_corrupt_or_missing_config(run, tmp_path):
    (run / "config.json").write_text('{"train": ')
    with pytest.raises(rd.RunDirError, match="config.json is not valid JSON"):
        load_run(run)
    with pytest.raises(rd.RunDirError, match="does not exist"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(rd.RunDirError, match="config.json is missing"):
        load_run(tmp_path / "empty")


def test_load_run_picks_weights(run):
    final = load_run(run)
    assert final.weights == rd.read_json(run / "final.json")["weights"]
    last = load_run(run, weights="last")
    assert last.weights == "last"
    with pytest.raises(ValueError, match="weights must be"):
        load_run(run, weights="newest")
