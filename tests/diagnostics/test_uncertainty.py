"""uncertainty: ECE on constructed cases; MC equals deterministic without dropout."""
from __future__ import annotations

import math

import pytest
import torch

from memloss.diagnostics.uncertainty import Uncertainty, entropy, expected_calibration_error

from .toys import FloatTask, LinearTask, TokenTask, net


def test_ece_constructed_cases():
    conf = torch.tensor([0.9] * 10)
    correct = torch.tensor([1.0] * 9 + [0.0])
    ece, table = expected_calibration_error(conf, correct, bins=10)
    assert ece == pytest.approx(0.0, abs=1e-6)  # 90% confident, 90% right
    assert table[8]["fraction"] == 1.0 and table[8]["accuracy"] == pytest.approx(0.9)
    # two bins: 0.55 confident and all right (gap .45), 0.95 confident and all wrong (gap .95)
    conf = torch.tensor([0.55, 0.55, 0.95, 0.95])
    correct = torch.tensor([1.0, 1.0, 0.0, 0.0])
    ece, table = expected_calibration_error(conf, correct, bins=10)
    assert ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.95)
    assert math.isnan(table[0]["accuracy"]) and table[0]["fraction"] == 0
    with pytest.raises(ValueError, match="1-D"):
        expected_calibration_error(conf, correct[:2])


def test_entropy_of_uniform_is_log_c():
    assert entropy(torch.full((4,), 0.25)).item() == pytest.approx(math.log(4))


def test_without_dropout_mc_equals_deterministic_and_mi_is_zero():
    r = Uncertainty(samples=3, batch_size=32)(net("lstm", "none"), FloatTask())
    m = r.summary["modes"]
    for k in ("accuracy", "nll", "ece", "entropy"):
        assert m["mc"][k] == pytest.approx(m["deterministic"][k], rel=1e-5)
    assert m["mc"]["mutual_information"] == pytest.approx(0.0, abs=1e-6)


def test_mc_dropout_has_positive_mutual_information_and_per_step_targets():
    r = Uncertainty(samples=4, batch_size=16, max_batches=2)(
        net("gru", "gal:p=0.5,p_embedding=0.2", task=TokenTask()), TokenTask(length=5, size=32))
    m = r.summary["modes"]["mc"]
    assert m["mutual_information"] > 0
    f = r.frame
    assert f[f.quantity == "accuracy"]["count"].eq(32 * 4).all()  # weight 0 at step 0
    fr = f[(f.quantity == "reliability_fraction") & (f["mode"] == "mc")]["value"]
    assert fr.sum() == pytest.approx(1.0)


def test_real_valued_targets_are_rejected():
    class Real(LinearTask):
        def batches(self, split, batch_size, *, generator=None):
            for b in super().batches(split, batch_size):
                yield type(b)(b.inputs, b.targets.float())

    with pytest.raises(ValueError, match="class targets"):
        Uncertainty(samples=1)(net(), Real())
