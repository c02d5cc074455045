"""TrainConfig validation and --set overrides."""
from __future__ import annotations

import pytest

from memloss.config import TrainConfig, apply_overrides


def test_overrides_coerce_types():
    c = apply_overrides(TrainConfig(task="adding"), [
        "lr=1", "clip=none", "eval_modes=deterministic,mc", "progress=false", "epochs=3",
        "task.length=30", "task.name=short", "init_range=0.05", "max_steps=null",
        "net.hidden_size=16"])
    assert c.lr == 1.0 and isinstance(c.lr, float) and c.clip is None and c.epochs == 3
    assert c.eval_modes == ("deterministic", "mc") and c.progress is False
    assert c.task_params == {"length": 30, "name": "short"} and c.net.init_range == 0.05
    assert c.net.hidden_size == 16


@pytest.mark.parametrize("changes,message", [
    ({"lr": 0}, "lr must be a number in \\(0, inf\\)"),
    ({"lr": float("nan")}, "lr must be"),
    ({"epochs": None, "max_steps": None}, "needs epochs or max_steps"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"hidden_size": True}, "hidden_size must be an integer"),
    ({"schedule": "cosine"}, "schedule='cosine' is not one of constant, plateau, decay"),
    ({"schedule": "plateau"}, "needs lr_decay < 1"),
    ({"lr_decay": 1.5}, "lr_decay must be a number in"),
    ({"eval_modes": ("bayes",)}, "unknown mode 'bayes'"),
    ({"valid_mode": "x"}, "valid_mode='x'"),
    ({"device": "tpu"}, "device must be cpu, cuda"),
    ({"momentum": 2.0}, "momentum must be"),
    ({"clip": -1.0}, "clip must be"),
])
def test_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(task="adding").replace(**changes)


def test_unknown_fields():
    with pytest.raises(ValueError, match="unknown TrainConfig option 'colour'"):
        TrainConfig.from_dict({"task": "adding", "colour": 1})
    with pytest.raises(ValueError, match="unknown TrainConfig option"):
        TrainConfig(task="adding").replace(colour=1)


def test_set_refuses_what_only_an_import_sets():
    with pytest.raises(ValueError, match="only `memloss import --fold-unk` sets it"):
        apply_overrides(TrainConfig(task="adding"), ["head_words=5"])
    with pytest.raises(ValueError, match="unknown option") as e:
        apply_overrides(TrainConfig(task="adding"), ["nope=1"])
    assert "head_words" not in str(e.value)
