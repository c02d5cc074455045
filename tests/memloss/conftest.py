"""Shared helpers for the trainer / run-directory / CLI tests (tiny sizes only)."""
from __future__ import annotations

import pytest

#: a temporal-order task small enough to train in a fraction of a second
TINY_TO = ["--set", "task.train_size=96", "--set", "task.valid_size=16",
           "--set", "task.test_size=16", "--set", "hidden_size=8", "--set", "batch_size=32",
           "--set", "eval_batch_size=64"]


@pytest.fixture
def tiny_to_config():
    from memloss.config import TrainConfig

    return TrainConfig(task="temporal-order",
                       task_params={"train_size": 96, "valid_size": 16, "test_size": 16},
                       batch_size=32, eval_batch_size=64, epochs=2, lr=0.1, progress=False,
                       net=dict(hidden_size=8))
