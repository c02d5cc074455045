"""Run directories: atomic writes, loading, and clear errors on missing or corrupt files."""
from __future__ import annotations

import json
import os
import shutil

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
    loop = {"epoch": 0, "step": 3, "batch_in_epoch": 3, "lr": 0.5, "best": None,
            "best_step": None, "bad_evals": 0, "loss_sum": 1.5, "loss_count": 3, "train_sums": {}}
    state = {"optimizer": {"state": {}}, "mask_rng": torch.ones(2, dtype=torch.uint8),
             "data_rng": torch.ones(2, dtype=torch.uint8), "hx": [], "hx_tuple": False,
             "loop": loop}
    rd.save_state(tmp_path / "s.pt", state)
    back = rd.load_state(tmp_path / "s.pt")
    assert back["loop"] == state["loop"] and torch.equal(back["mask_rng"], state["mask_rng"])
    rd.save_state(tmp_path / "s.pt", {**state, "loop": {**loop, "step": -1}})
    with pytest.raises(rd.RunDirError, match="s.pt \\(loop\\): field step: .*minimum"):
        rd.load_state(tmp_path / "s.pt")


def test_append_jsonl(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rd.append_jsonl(path, {"epoch": 1, "step": 1})
    rd.append_jsonl(path, {"epoch": 1, "step": 2})
    assert rd.read_jsonl(path) == [{"epoch": 1, "step": 1}, {"epoch": 1, "step": 2}]
    assert rd.truncate_jsonl(path, 1) == 1 and rd.read_jsonl(path) == [{"epoch": 1, "step": 1}]
    with pytest.raises(rd.RunDirError, match="has 1 records but the checkpoint covers 2"):
        rd.truncate_jsonl(path, 2)
    path.write_text('{"epoch": 1, "step": 1}\n{"step": 2')
    with pytest.raises(rd.RunDirError, match="line 2 is not valid JSON"):
        rd.read_jsonl(path)
    path.write_text('{"epoch": 1, "step": 1}\n[3]\n')
    with pytest.raises(rd.RunDirError, match="line 2: the top level: \\[3\\] is not of type"):
        rd.read_jsonl(path)


@pytest.fixture
def run(tmp_path, tiny_to_config):
    return train(tiny_to_config.replace(epochs=1), tmp_path / "run").path


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _file(run, name):
    return rd.read_checkpoint(run).path(name)


def test_truncated_weights_give_a_clear_error(run):
    _truncate(_file(run, "model.safetensors"))
    with pytest.raises(rd.RunDirError, match="model.safetensors does not match the digest"):
        load_run(run, weights="last")


def test_corrupt_weights_give_a_clear_error(run):
    path = _file(run, "best.safetensors")
    path.unlink()  # a hard link shared with no other checkpoint; replace, not edit in place
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(rd.RunDirError, match="best.safetensors does not match the digest"):
        load_run(run, weights="best")


def test_truncated_trainer_state_blocks_resume(run, tiny_to_config):
    _truncate(_file(run, "trainer_state.pt"))
    with pytest.raises(rd.RunDirError, match="trainer_state.pt does not match the digest"):
        train(tiny_to_config.replace(epochs=2), run, resume=True)


def _legacy(run):
    """The run as an older version wrote it: the checkpoint's files at the top, no manifest."""
    ckpt = rd.read_checkpoint(run)
    for name in ckpt.manifest["files"]:
        os.replace(ckpt.path(name), run / name)
    shutil.rmtree(ckpt.folder)
    (run / "checkpoint.json").unlink()


def test_older_run_directories_load_and_resume(run, tiny_to_config):
    _legacy(run)
    assert rd.read_checkpoint(run).legacy
    load_run(run, weights="last")
    train(tiny_to_config.replace(epochs=2), run, resume=True)
    assert not (run / "model.safetensors").exists()  # the new format replaced the old files
    assert rd.read_checkpoint(run).step == 6


def test_mismatched_legacy_checkpoint_pair_blocks_resume(run, tiny_to_config):
    _legacy(run)
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
    with pytest.raises(ValueError, match="weights=.newest. is not one of final, last, best"):
        load_run(run, weights="newest")
