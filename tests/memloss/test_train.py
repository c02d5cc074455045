"""The trainer: schedules, early stopping, evaluation modes, exact resume, non-finite stops."""
from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import torch

from memloss.config import TrainConfig
from memloss.core import runfiles as rf
from memloss.core.runfiles import read_checkpoint, read_json, read_jsonl
from memloss.runs import load_run
from memloss.models import predict
from memloss.training import (CALLBACKS, Callback, NonFiniteError, build_net, build_task, evaluate,
                              train)
from memloss.models import Net, NetConfig
from memloss.tasks.synthetic import Adding, TemporalOrder


def _weights(path):
    return read_checkpoint(path).weights()


def _state(path):
    return read_checkpoint(path).state()


def _loop(path):
    return read_checkpoint(path).manifest["loop"]


def _records(path):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in read_jsonl(path / "metrics.jsonl")]


def test_train_writes_a_complete_run(tmp_path, tiny_to_config):
    cfg = tiny_to_config.replace(scheme="semeniuta:p=0.25", eval_modes=("deterministic", "mc"),
                                 mc_samples=2)
    out = train(cfg, tmp_path / "run", command=["test"]).path
    for name in ("config.json", "metrics.jsonl", "final.json", "checkpoint.json"):
        assert (out / name).is_file(), name
    ckpt = read_checkpoint(out)
    assert set(ckpt.manifest["files"]) == {"model.safetensors", "trainer_state.pt",
                                           "best.safetensors"}
    assert ckpt.step == 6 and ckpt.manifest["metrics_lines"] == 2
    assert [p.name for p in out.iterdir() if p.name.startswith("checkpoint-")] == [ckpt.folder.name]
    assert not (out / ".lock.json").exists()  # the lock is released
    config = read_json(out / "config.json")
    assert config["train"] == cfg.to_dict() and config["command"] == ["test"]
    assert config["net"]["input_size"] == 4 and config["seed"] == 0 and "torch" in config["versions"]
    recs = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in recs] == [1, 2] and [r["step"] for r in recs] == [3, 6]
    for r in recs:
        assert {"train_loss", "train_accuracy", "valid_accuracy", "valid_loss", "lr", "seconds"} <= set(r)
    final = read_json(out / "final.json")
    assert set(final["test"]) == {"deterministic", "mc"} and final["test"]["mc"]["samples"] == 2
    assert 0 <= final["test"]["deterministic"]["accuracy"] <= 1
    run = load_run(out)
    assert not run.net.training and run.task == build_task(cfg) and len(run.metrics) == 2
    assert run.train_config == cfg
    # the final metrics are reproducible from the saved weights
    again = evaluate(run.net, run.task, "test", mode="deterministic")
    assert again == pytest.approx(final["test"]["deterministic"])


def test_train_returns_the_run_it_wrote_with_its_configs_parsed(tmp_path, tiny_to_config):
    cfg = tiny_to_config.replace(scheme="semeniuta:p=0.25", epochs=1)
    run = train(cfg, tmp_path / "run", command=["test"])
    assert run.config == read_json(run.path / "config.json")
    assert run.final == read_json(run.path / "final.json") and run.weights == run.final["weights"]
    assert run.train_config == cfg
    assert run.net_config == NetConfig.from_dict(run.config["net"]) and run.net_config.input_size == 4
    assert run.preset is None  # no preset trains temporal-order at this size and setting
    loaded = load_run(run.path)
    assert (loaded.train_config, loaded.net_config) == (run.train_config, run.net_config)
    # a resume takes --set items for the saved config, which it reads under the run's lock
    more = train(None, run.path, resume=True, overrides=["epochs=2"], command=["again"])
    assert more.train_config == cfg.replace(epochs=2)
    assert more.config == read_json(run.path / "config.json")
    assert more.config["resumed"][-1]["changed"] == {"epochs": [1, 2]}
    assert more.final["epoch"] == 2


def test_init_is_seeded_and_leaves_global_rng_alone(tiny_to_config):
    task = build_task(tiny_to_config)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = build_net(tiny_to_config, task)
    assert torch.equal(before, torch.random.get_rng_state())
    b = build_net(tiny_to_config, task)
    c = build_net(tiny_to_config.replace(seed=1), task)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("resume_at", [2, 3, 4])  # mid-epoch, at an epoch end, mid next epoch
def test_resume_is_bit_for_bit(tmp_path, tiny_to_config, resume_at):
    cfg = tiny_to_config.replace(scheme="semeniuta:p=0.3,sampling=step", optimizer="momentum",
                                 epochs=None, max_steps=6, eval_every=2, schedule="plateau",
                                 lr_decay=0.5, eval_modes=("deterministic", "mc"), mc_samples=2)
    straight = train(cfg, tmp_path / "straight").path
    half = train(cfg.replace(max_steps=resume_at), tmp_path / "half").path
    assert _loop(half)["step"] == resume_at
    train(cfg, half, resume=True)
    a, b = _weights(straight), _weights(half)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = _state(straight), _state(half)
    assert torch.equal(sa["mask_rng"], sb["mask_rng"]) and torch.equal(sa["data_rng"], sb["data_rng"])
    assert sa["loop"] == sb["loop"]
    assert _records(straight) == _records(half)
    assert read_json(straight / "final.json") == read_json(half / "final.json")
    assert len(read_json(half / "config.json")["resumed"]) == 1


def test_resume_rejects_changed_setup(tmp_path, tiny_to_config):
    out = train(tiny_to_config.replace(epochs=1), tmp_path / "r").path
    with pytest.raises(ValueError, match="cannot change \\['optimizer'\\]"):
        train(tiny_to_config.replace(optimizer="adam"), out, resume=True)
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny_to_config, out)


def test_decay_schedule_and_logged_lr(tmp_path, tiny_to_config):
    cfg = tiny_to_config.replace(lr=1.0, epochs=4, schedule="decay", lr_decay=0.5, decay_start=2)
    out = train(cfg, tmp_path / "r").path
    # lr 1 for epochs 1-2, then halved after every epoch from epoch 2 on (Zaremba style)
    assert [r["lr"] for r in read_jsonl(out / "metrics.jsonl")] == [1.0, 1.0, 0.5, 0.25]


def test_plateau_schedule_and_early_stopping(tmp_path, tiny_to_config):
    # a learning rate so small that validation cannot improve after the first evaluation
    cfg = tiny_to_config.replace(lr=1e-12, epochs=5, schedule="plateau", lr_decay=0.5, patience=2)
    out = train(cfg, tmp_path / "r").path
    recs = read_jsonl(out / "metrics.jsonl")
    assert [r["lr"] for r in recs] == [1e-12, 1e-12, 0.5e-12]
    final = read_json(out / "final.json")
    assert final["stopped"] == "early_stopping" and final["epoch"] == 3
    assert final["weights"] == "best" and final["weights_step"] == 3


class _Poison(Callback):
    """Injects NaN into a weight after a given step."""

    def __init__(self, after_step: int) -> None:
        self.after_step = after_step

    def on_step_end(self, trainer, loss):
        if trainer.step == self.after_step:
            with torch.no_grad():
                trainer.net.head.weight.fill_(float("nan"))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_to_config):
    cfg = tiny_to_config.replace(epochs=5, eval_every=2)
    with pytest.raises(NonFiniteError, match="non-finite training loss .* at epoch 2 step 6; the "
                                             "last good checkpoint \\(step 4\\)"):
        train(cfg, tmp_path / "r", callbacks=[_Poison(after_step=5)])
    assert _loop(tmp_path / "r")["step"] == 4
    w = _weights(tmp_path / "r")
    assert all(torch.isfinite(v).all() for v in w.values())
    assert not (tmp_path / "r" / "final.json").exists()
    run = load_run(tmp_path / "r")  # still loadable
    assert torch.isfinite(run.net.head.weight).all()


def test_non_finite_weights_are_never_checkpointed(tmp_path, tiny_to_config):
    cfg = tiny_to_config.replace(epochs=5, eval_every=2)
    with pytest.raises(NonFiniteError, match="non-finite weights \\(head.weight\\) after epoch 2 "
                                             "step 4; the last good checkpoint \\(step 3\\)"):
        train(cfg, tmp_path / "r", callbacks=[_Poison(after_step=4)])
    assert _loop(tmp_path / "r")["step"] == 3
    assert all(torch.isfinite(v).all() for v in _weights(tmp_path / "r").values())


@pytest.fixture
def nan_gradient(monkeypatch):
    """Temporal order's loss with a finite value and a NaN gradient (d sqrt(x)/dx at 0, times
    0)."""
    original = TemporalOrder.loss

    def loss(self, output, batch):
        return original(self, output, batch) + torch.sqrt(output.sum() * 0.0)

    monkeypatch.setattr(TemporalOrder, "loss", loss)


def test_non_finite_gradient_is_detected(tmp_path, tiny_to_config, nan_gradient):
    with pytest.raises(NonFiniteError, match="non-finite gradient norm .* at epoch 1 step 1, "
                                             "before the first checkpoint"):
        train(tiny_to_config, tmp_path / "r")
    assert not (tmp_path / "r").exists()  # no half-run is left behind


def test_non_finite_gradient_under_clipping_does_not_advise_setting_clip(tmp_path, tiny_to_config,
                                                                          nan_gradient):
    with pytest.raises(NonFiniteError) as caught:
        train(dataclasses.replace(tiny_to_config, clip=5.0), tmp_path / "r")
    message = str(caught.value)
    assert "set clip (max-norm" not in message
    assert "Lower the learning rate (lr=0.1) or the clip (clip=5 is set;" in message


def test_huge_learning_rate_is_caught(tmp_path):
    cfg = TrainConfig(task="adding",
                      task_params={"length": 6, "train_size": 256, "valid_size": 8,
                                                  "test_size": 8},
                      lr=1e30, epochs=3, batch_size=8, progress=False, net=dict(hidden_size=8))
    with pytest.raises(NonFiniteError, match="non-finite"):
        train(cfg, tmp_path / "r")


def test_predict_equals_net_predict_proba():
    net = Net(NetConfig(input_size=4, output_size=4, hidden_size=6, scheme="gal:p=0.3,p_recurrent=0.3"))
    x = torch.randn(3, 5, 4)
    for mode in ("deterministic", "mc", "train-mode"):
        p1, _ = predict(net, x, mode=mode, samples=3, generator=torch.Generator().manual_seed(1))
        p2 = net.predict_proba(x, mode=mode, samples=3, generator=torch.Generator().manual_seed(1))
        assert torch.equal(p1, p2), mode


def test_evaluate_regression_mc_averages_outputs():
    task = Adding(length=6, train_size=8, valid_size=8, test_size=16)
    net = Net(NetConfig(input_size=2, output_size=1, hidden_size=5, scheme="zaremba:p=0.5"))
    det = evaluate(net, task, "test")
    x, y, _ = task.split("test")
    with torch.no_grad():
        out = net(x, stochastic=False)[0]
    assert det["mse"] == pytest.approx(float(((out[:, -1, 0] - y) ** 2).mean()), rel=1e-5)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        outs = [net(x, stochastic=True, generator=g)[0][:, -1, 0] for _ in range(4)]
    mean = torch.stack(outs).mean(0)
    mc = evaluate(net, task, "test", mode="mc", samples=4, generator=torch.Generator().manual_seed(0))
    assert mc["mse"] == pytest.approx(float(((mean - y) ** 2).mean()), rel=1e-5)
    assert evaluate(net, task, "test", mode="mc", samples=4, seed=7) == \
        evaluate(net, task, "test", mode="mc", samples=4, seed=7)
    with pytest.raises(ValueError, match="unknown inference mode"):
        evaluate(net, task, "test", mode="bayes")


_EVENTS: list[str] = []


@CALLBACKS.register("test-recorder", "records events (tests only)")
class _Recorder(Callback):
    def __init__(self, config):
        self.config = config

    def on_train_start(self, trainer):
        _EVENTS.append("start")

    def on_evaluate(self, trainer, record):
        _EVENTS.append(f"eval@{record['step']}")
        record["probe_value"] = trainer.step * 10

    def on_train_end(self, trainer, final):
        _EVENTS.append(f"end:{final['stopped']}")


def test_named_hooks_are_called(tmp_path, tiny_to_config):
    _EVENTS.clear()
    train(tiny_to_config.replace(hooks=("test-recorder",)), tmp_path / "r")
    assert _EVENTS == ["start", "eval@3", "eval@6", "end:epochs"]
    assert [r["probe_value"] for r in read_jsonl(tmp_path / "r" / "metrics.jsonl")] == [30, 60]
    with pytest.raises(ValueError, match="unknown callback 'nope'"):
        train(tiny_to_config.replace(hooks=("nope",)), tmp_path / "r2")
    assert not (tmp_path / "r2").exists()


def test_config_json_round_trip(tmp_path, tiny_to_config):
    cfg = tiny_to_config.replace(eval_modes=("mc",), hooks=(), clip=1.0)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_max_norm_clipping_bounds_the_update(tmp_path, tiny_to_config):
    cfg = tiny_to_config.replace(epochs=None, max_steps=1, eval_every=1, clip=1e-3, lr=1.0,
                                 restore_best=False)
    task = build_task(cfg)
    before = build_net(cfg, task).state_dict()
    out = train(cfg, tmp_path / "r").path
    after = _weights(out)
    step = torch.sqrt(sum(((after[k] - before[k]) ** 2).sum() for k in before))
    assert 0 < float(step) <= 1e-3 * (1 + 1e-4)  # SGD step = lr * clipped gradient


def test_resume_carries_the_recurrent_state(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "fixtures" / "ptb"
    cfg = TrainConfig(task="ptb-word",
                      task_params={"root": str(root), "bptt": 5,
                                                    "batching": "stream"},
                      batch_size=4, eval_batch_size=4, epochs=None, max_steps=6, eval_every=3,
                      optimizer="adam", lr=0.01, progress=False,
                      net=dict(hidden_size=8, scheme="gal:p=0.2,p_recurrent=0.2"))
    task = build_task(cfg)
    assert next(task.batches("train", 4)).carry
    straight = train(cfg, tmp_path / "straight").path
    half = train(cfg.replace(max_steps=4), tmp_path / "half").path
    state = _state(half)
    assert len(state["hx"]) == 2 and state["loop"]["batch_in_epoch"] > 0  # (h, c) mid-stream
    train(cfg, half, resume=True)
    a, b = _weights(straight), _weights(half)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # without the carried state the continuation differs
    other = train(cfg.replace(max_steps=4), tmp_path / "other").path
    ck = read_checkpoint(other)
    st = ck.state()
    st["hx"] = []
    rf.commit_checkpoint(other, ck.step, model=ck.weights(), state=st,
                         best=ck if ck.has(rf.BEST) else None,
                         record={k: ck.manifest[k] for k in ("epoch", "metrics_lines", "best_step",
                                                             "train", "net", "loop")})
    train(cfg, other, resume=True)
    c = _weights(other)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_training_batches_come_from_the_task_at_each_epoch(tmp_path, tiny_to_config, monkeypatch):
    """A curriculum task (Task.at_epoch) supplies each epoch's training batches."""
    seen = []
    original = TemporalOrder.at_epoch

    def at_epoch(self, epoch):
        seen.append(epoch)
        return original(self, epoch)

    monkeypatch.setattr(TemporalOrder, "at_epoch", at_epoch)
    train(tiny_to_config.replace(epochs=3), tmp_path / "r")
    assert seen == [0, 0, 1, 2]  # the first: the check pass on one batch before training


def test_ner_length_schedule_switches_training_length():
    from memloss.tasks.ner import ConllNER

    task = ConllNER(root="unused", length_schedule=((5, 2), (15, 1)))
    assert [task.at_epoch(e).train_length for e in range(4)] == [5, 5, 15, 15]


def test_config_records_the_execution_path(tmp_path, tiny_to_config):
    train(tiny_to_config.replace(scheme="semeniuta:p=0.2"), tmp_path / "a")
    train(tiny_to_config.replace(scheme="zaremba:p=0.2"), tmp_path / "b")
    assert json.loads((tmp_path / "a" / "config.json").read_text())["path"] == "fused"
    assert json.loads((tmp_path / "b" / "config.json").read_text())["path"] == "native"


def test_each_training_process_records_its_costs_beside_the_results(tmp_path, tiny_to_config,
                                                                    monkeypatch, caplog):
    """runtime.jsonl: one line per process that wrote final.json, with the kernel-building
    costs (``compile_stats``) taken when its trainer was built and at the end; final.json
    and config.json hold none of it."""
    from memloss.models.paths import kernels

    real, calls = kernels.compile_stats, iter(range(100))
    monkeypatch.setattr(kernels, "compile_stats", lambda: {**real(), "call": next(calls)})
    cfg = tiny_to_config.replace(epochs=1)
    out = train(cfg, tmp_path / "run").path
    train(cfg.replace(epochs=2), out, resume=True)
    first, second = read_jsonl(out / rf.RUNTIME, kind="runtime")
    assert (first["steps"], second["steps"]) == ([0, 3], [3, 6])
    assert [(r["kernels"]["before"], r["kernels"]["after"]) for r in (first, second)] == [
        ({**real(), "call": 0}, {**real(), "call": 1}), ({**real(), "call": 2}, {**real(), "call": 3})]
    assert 0 < first["cpu_seconds"] and 0 < first["seconds"] and first["host"]
    for name in ("final.json", "config.json"):
        assert "kernels" not in (out / name).read_text() and "cpu_seconds" not in (
            out / name).read_text()
    # a runtime.jsonl that cannot be extended is left as it is, and the run still finishes
    (out / rf.RUNTIME).write_bytes(b"\xff\xfe not text")
    with caplog.at_level(logging.WARNING):
        more = train(cfg.replace(epochs=3), out, resume=True)
    assert more.final["epoch"] == 3 and (out / rf.RUNTIME).read_bytes() == b"\xff\xfe not text"
    assert "costs are not recorded" in caplog.text and "results are complete" in caplog.text
