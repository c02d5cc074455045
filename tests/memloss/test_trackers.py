"""Tracker callbacks (TensorBoard, MLflow, W&B) for real at tiny size, offline."""
from __future__ import annotations

import json
import sys

import pytest

from memloss.cli import main
from memloss.core.runfiles import read_json

from .conftest import TINY_TO


def _train(tmp_path, hook: str) -> "object":
    out = tmp_path / "run"
    assert main(["train", "temporal-order", *TINY_TO, "--set", "epochs=2", "--set",
                 f"hooks={hook}", "--out", str(out)]) == 0
    return out


def test_tensorboard_logs_every_evaluation_and_the_test_metrics(tmp_path):
    pytest.importorskip("tensorboard")  # a dev dependency: installed by `make test`
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = _train(tmp_path, "tensorboard")
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"valid/accuracy", "train/loss", "test/deterministic/accuracy"} <= set(tags)
    steps = [r["step"] for r in (json.loads(line) for line in
                                 (out / "metrics.jsonl").read_text().splitlines())]
    assert [e.step for e in events.Scalars("valid/accuracy")] == steps
    final = read_json(out / "final.json")["test"]["deterministic"]["accuracy"]
    assert events.Scalars("test/deterministic/accuracy")[-1].value == pytest.approx(final)


def test_mlflow_logs_params_metrics_and_resumes_its_run(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a local store without a server
    out = _train(tmp_path, "mlflow")
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    runs = mlflow.search_runs(experiment_names=["memloss"], output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["net.hidden_size"] == "8" and run.data.params["task"] == "temporal-order"
    final = read_json(out / "final.json")["test"]["deterministic"]["accuracy"]
    assert run.data.metrics["test_deterministic_accuracy"] == pytest.approx(final)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "valid_accuracy")
    assert [m.step for m in history] == [3, 6]
    # resuming the run directory logs into the same MLflow run
    assert main(["train", "--resume", str(out), "--set", "epochs=3"]) == 0
    runs = mlflow.search_runs(experiment_names=["memloss"], output_format="list")
    assert len(runs) == 1
    history = mlflow.MlflowClient().get_metric_history(runs[0].info.run_id, "valid_accuracy")
    assert [m.step for m in history] == [3, 6, 9]


def test_wandb_offline_writes_the_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = _train(tmp_path, "wandb")
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    # the offline run's record log (protobuf records; wandb 0.31 reads it only from its Go
    # core) holds the config, the logged history and the summary keys as plain strings
    records = next(runs[0].glob("*.wandb")).read_bytes()
    for key in (b"net.hidden_size", b"valid_accuracy", b"train_loss", b"test/deterministic/accuracy"):
        assert key in records, key


def test_a_missing_tracker_package_fails_before_the_run_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import fails
    out = tmp_path / "run"
    assert main(["train", "temporal-order", *TINY_TO, "--set", "hooks=tensorboard",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "hooks=tensorboard needs the tensorboard package: pip install 'memloss[tensorboard]'" in err
    assert not (out / "config.json").exists()
