"""Fixtures: small run directories written by hand (no training), in the trainer's layout."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from memloss.config import TrainConfig
from memloss.models import NetConfig
from memloss.runs import config_record

SCHEMES = {
    "moon": "moon:p=0.5,sampling=sequence,scaling=expectation",
    "semeniuta": "semeniuta:p=0.5,sampling=step,scaling=expectation",
}


def _state_decay(scheme: str, seed: int, T: int = 6) -> pd.DataFrame:
    rows = []
    rate = 0.5 if scheme == "moon" else 0.95
    for mode, scaling in (("deterministic", "expectation"), ("train-mode", "expectation")):
        for t in range(T):
            for q in ("c_norm", "h_norm"):
                v = (rate ** t if mode == "deterministic" else 1.0) * (1 + 0.05 * seed)
                rows.append({"probe": "state-decay", "scheme": SCHEMES[scheme], "cell": "lstm",
                             "scaling": scaling, "mode": mode, "quantity": q, "layer": 0, "t": t,
                             "value": v, "std": 0.01})
        rows.append({"probe": "state-decay", "scheme": SCHEMES[scheme], "cell": "lstm",
                     "scaling": scaling, "mode": mode, "quantity": "decay_rate", "layer": 0,
                     "t": None, "value": math.log(rate) if mode == "deterministic" else 0.0,
                     "std": None})
    return pd.DataFrame(rows)


def _scaling_sweep(scheme: str, seed: int) -> pd.DataFrame:
    rows = []
    for mode in ("deterministic", "mc"):
        for length in (6, 12):
            acc = 1.0 if scheme == "semeniuta" else (0.3 if mode == "deterministic" else 0.9)
            rows.append({"probe": "test-time-scaling", "scheme": SCHEMES[scheme], "cell": "lstm",
                         "scaling": "expectation", "mode": mode, "quantity": "accuracy",
                         "layer": None, "t": None, "value": acc - 0.01 * seed, "split": "test",
                         "length": length})
    return pd.DataFrame(rows)


def write_run(path: Path, scheme: str = "moon", seed: int = 0, length: int = 6,
              probes: bool = True) -> Path:
    """A complete run directory as memloss.training.train writes it."""
    train = TrainConfig(task="temporal-order", task_params={"length": length}, optimizer="adam",
                        lr=0.01, epochs=2, seed=seed,
                        net=dict(hidden_size=8, scheme=SCHEMES[scheme]))
    net = NetConfig(cell="lstm", hidden_size=8, scheme=SCHEMES[scheme], input_size=4,
                    output_size=4)
    path.mkdir(parents=True)
    config = config_record(train, net, path="fused", task_info={"seq_len": 6, "chance": 0.25},
                           command=["memloss", "train", "temporal-order"])
    config.update(versions={"torch": "x"}, created=f"2026-01-0{seed + 1}T00:00:00+00:00")
    (path / "config.json").write_text(json.dumps(config, indent=2))
    lines = []
    for epoch in (1, 2):
        lines.append(json.dumps({"epoch": epoch, "batch": 0, "step": 10 * epoch, "lr": 0.01,
                                 "train_loss": 1.4 - 0.3 * epoch, "train_accuracy": 0.4 * epoch,
                                 "valid_accuracy": 0.3 * epoch + 0.01 * seed,
                                 "valid_loss": 1.3 - 0.2 * epoch, "valid_best": 0.5,
                                 "seconds": 1.234 + seed}))
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    test_acc = 0.25 if scheme == "moon" else 1.0
    final = {"weights": "last", "step": 20, "epoch": 2, "metric": "accuracy",
             "test": {"deterministic": {"accuracy": test_acc, "loss": 1.0},
                      "mc": {"accuracy": 0.9, "loss": 0.5, "samples": 4}}}
    (path / "final.json").write_text(json.dumps(final))
    if probes:
        diag = path / "diagnostics"
        diag.mkdir()
        for name, frame in (("state-decay", _state_decay(scheme, seed)),
                            ("test-time-scaling", _scaling_sweep(scheme, seed))):
            frame.to_csv(diag / f"{name}.csv", index=False)
            (diag / f"{name}.json").write_text(json.dumps({"probe": name, "params": {},
                                                           "summary": {"x": 1}}))
    return path


@pytest.fixture
def make_run(tmp_path: Path):
    def make(name: str, **kwargs) -> Path:
        return write_run(tmp_path / "runs" / name, **kwargs)
    return make


@pytest.fixture
def four_runs(make_run) -> list[Path]:
    """moon and semeniuta, two seeds each."""
    return [make_run(f"{s}-{seed}", scheme=s, seed=seed)
            for s in ("moon", "semeniuta") for seed in (0, 1)]
