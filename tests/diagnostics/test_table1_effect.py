"""End to end (slow): test-time-scaling shows Semeniuta's Table 1 effect on temporal order.

With per-sequence masks under the expectation convention, Moon's cell dropout and
Semeniuta's update dropout train identically (binary masks: m*m = m, and c_0 = 0), so the
two runs below have the same weights; only deterministic inference differs: Moon scales
the whole cell by 1-p every step (eq. 17), Semeniuta only the updates (eq. 19).
"""
from __future__ import annotations

import pytest

from memloss.diagnostics import run_probes


@pytest.mark.slow
@pytest.mark.xfail(run=False, reason=(
    "known defect, open: the premise of identical training no longer holds (each site draws "
    "its masks from its own stream, so the moon and semeniuta nets differ: mc accuracy at "
    "length 15 measured 0.965 against 0.996 with the final weights of 4 epochs), and 4 epochs "
    "do not show the effect (moon deterministic at 30: 0.316, semeniuta 0.594); it failed on "
    "main 777e77b too, where no CI run reached the slow tier"))
def test_moon_per_sequence_fails_deterministic_inference_on_longer_sequences(tmp_path):
    from memloss.training import TrainConfig, train

    tables = {}
    for scheme in ("moon", "semeniuta"):
        cfg = TrainConfig(task="temporal-order",
                          task_params={"length": 15, "train_size": 1600, "valid_size": 128,
                                       "test_size": 256},
                          optimizer="adam", lr=0.01, epochs=4, batch_size=32, progress=False,
                          net=dict(hidden_size=32, scheme=f"{scheme}:p=0.25,sampling=sequence,"
                                                 "scaling=expectation"))
        run = train(cfg, tmp_path / scheme)
        res = run_probes(run.net, run.task, ["test-time-scaling"],
                         params={"test-time-scaling": {"factors": (1.0, 2.0), "samples": 5}})
        tables[scheme] = res["test-time-scaling"].summary["table"]["test"]
    moon, sem = tables["moon"], tables["semeniuta"]
    assert sem["deterministic"]["15"] >= 0.9  # update dropout: learned and usable at test
    assert moon["mc"]["15"] >= 0.9  # the moon net has learned the task too ...
    assert moon["deterministic"]["30"] < 0.25  # ... but fails deterministically (chance 0.25)
    assert sem["deterministic"]["30"] > moon["deterministic"]["30"] + 0.3
    assert moon["mc"]["30"] > moon["deterministic"]["30"] + 0.3
    assert moon["mc"] == sem["mc"]  # identical training: sampled masks agree exactly
