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


def _hparams(events) -> "tuple[object, object]":
    """The HParams experiment and session-start records of an EventAccumulator."""
    from tensorboard.plugins.hparams import metadata
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    def plugin_data(tag: str) -> HParamsPluginData:
        return HParamsPluginData.FromString(events.SummaryMetadata(tag).plugin_data.content)

    return (plugin_data(metadata.EXPERIMENT_TAG).experiment,
            plugin_data(metadata.SESSION_START_INFO_TAG).session_start_info)


def test_tensorboard_logs_the_loss_of_every_step_and_an_hparams_entry(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = _train(tmp_path, "tensorboard")  # 96 sequences in batches of 32: 3 steps an epoch
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    losses = events.Scalars("train/step_loss")
    assert [e.step for e in losses] == [1, 2, 3, 4, 5, 6]
    # the per-epoch train/loss is the mean of that epoch's step losses
    epoch_loss = {e.step: e.value for e in events.Scalars("train/loss")}
    assert epoch_loss[3] == pytest.approx(sum(e.value for e in losses[:3]) / 3, rel=1e-6)
    assert epoch_loss[6] == pytest.approx(sum(e.value for e in losses[3:]) / 3, rel=1e-6)

    hp_events = EventAccumulator(str(out / "tensorboard" / "hparams"))
    hp_events.Reload()
    experiment, session = _hparams(hp_events)
    config = read_json(out / "config.json")["train"]
    hp = {k: (v.string_value if v.HasField("string_value") else v.number_value)
          for k, v in session.hparams.items()}
    assert hp["task"] == "temporal-order" and hp["net.hidden_size"] == 8
    assert hp["lr"] == pytest.approx(config["lr"]) and hp["epochs"] == 2
    assert hp["eval_modes"] == "deterministic" and hp["hooks"] == "tensorboard"
    assert "max_steps" not in hp  # None: not set
    assert {h.name for h in experiment.hparam_infos} == set(hp)
    metrics = {m.name.tag for m in experiment.metric_infos}
    assert {"test/deterministic/accuracy", "test/deterministic/loss", "valid/best"} <= metrics
    assert metrics <= set(hp_events.Tags()["scalars"])  # each metric's value is in the run
    final = read_json(out / "final.json")["test"]["deterministic"]["accuracy"]
    assert hp_events.Scalars("test/deterministic/accuracy")[-1].value == pytest.approx(final)


def test_tensorboard_on_resume_keeps_one_history_and_one_hparams_entry(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = _train(tmp_path, "tensorboard")
    assert main(["train", "--resume", str(out), "--set", "epochs=3"]) == 0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/step_loss")] == list(range(1, 10))
    assert [e.step for e in events.Scalars("valid/accuracy")] == [3, 6, 9]
    assert [e.step for e in events.Scalars("test/deterministic/accuracy")] == [6, 9]
    hp_events = EventAccumulator(str(out / "tensorboard" / "hparams"))
    hp_events.Reload()
    _, session = _hparams(hp_events)
    assert session.hparams["epochs"].number_value == 3  # the resumed run's settings
    assert [e.step for e in hp_events.Scalars("test/deterministic/accuracy")] == [9]


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
    losses = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train_step_loss")
    assert sorted(m.step for m in losses) == list(range(1, 7))  # every step, sent per evaluation
    assert all(m.value > 0 for m in losses)
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
    for key in (b"net.hidden_size", b"valid_accuracy", b"train_loss", b"train_step_loss",
                b"test/deterministic/accuracy"):
        assert key in records, key


def test_a_missing_tracker_package_fails_before_the_run_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import fails
    out = tmp_path / "run"
    assert main(["train", "temporal-order", *TINY_TO, "--set", "hooks=tensorboard",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "hooks=tensorboard needs the tensorboard package: pip install 'memloss[tensorboard]'" in err
    assert not (out / "config.json").exists()
