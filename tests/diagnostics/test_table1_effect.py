"""End to end (slow): test-time-scaling shows Semeniuta's Table 1 effect on temporal order.

With per-sequence masks under the expectation convention, Moon's cell dropout and
Semeniuta's update dropout train identically (binary masks: m*m = m, and c_0 = 0), so the
two final networks below have the same weights (checked, not assumed: the final weights,
since best-validation weights would be chosen by the two inferences); only deterministic
inference differs: Moon scales the whole cell by 1-p every step (eq. 17), Semeniuta only
the updates (eq. 19). Measured here: MC averaging 1.0 at the trained length for both;
deterministic inference 1.0 for update dropout, 0.73 for Moon's, which is at 0.34 on
sequences twice as long (chance: 0.25).
"""
from __future__ import annotations

import pytest
import torch

from memloss.diagnostics import run_probes


@pytest.mark.slow
def test_moon_per_sequence_fails_deterministic_inference_where_update_dropout_does_not(tmp_path):
    from memloss.training import TrainConfig, train

    tables, weights = {}, {}
    for scheme in ("moon", "semeniuta"):
        cfg = TrainConfig(task="temporal-order",
                          task_params={"length": 15, "train_size": 1600, "valid_size": 128,
                                       "test_size": 256},
                          optimizer="adam", lr=0.01, epochs=8, batch_size=32, progress=False,
                          restore_best=False,
                          net=dict(hidden_size=32, scheme=f"{scheme}:p=0.25,sampling=sequence,"
                                                 "scaling=expectation"))
        run = train(cfg, tmp_path / scheme)
        weights[scheme] = run.net.state_dict()
        res = run_probes(run.net, run.task, ["test-time-scaling"],
                         params={"test-time-scaling": {"factors": (1.0, 2.0), "samples": 5}})
        tables[scheme] = res["test-time-scaling"].summary["table"]["test"]
    assert weights["moon"].keys() == weights["semeniuta"].keys()
    assert all(torch.equal(weights["moon"][k], weights["semeniuta"][k]) for k in weights["moon"])
    moon, sem = tables["moon"], tables["semeniuta"]
    assert moon["mc"] == sem["mc"]  # one network, one set of masks
    assert moon["mc"]["15"] >= 0.95  # the network has learned the task ...
    assert sem["deterministic"]["15"] >= 0.95  # ... update dropout's inference uses it ...
    assert moon["deterministic"]["15"] <= sem["deterministic"]["15"] - 0.15  # ... Moon's not
    assert moon["deterministic"]["30"] < 0.4 < sem["deterministic"]["30"]  # chance: 0.25
