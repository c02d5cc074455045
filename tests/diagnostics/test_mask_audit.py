"""mask-audit: the declaration of every mask, checked by measurement, and caught when the
model does something else than it declares."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from memloss.diagnostics.mask_audit import MaskAudit, acts_on, declared_statistics, \
    mask_statistics
from memloss.models import MaskEntry, MaskPlan, Net, SiteSpec
from memloss.models.inference import expected_masks

from .toys import FloatTask, TokenTask, net

AUDIT = MaskAudit(draws=32, batch_size=8, length=5)


@pytest.mark.parametrize("cell,scheme,task,where", [
    ("lstm", "moon:p=0.3,sampling=step+zaremba:p=0.2", FloatTask(), {
        "l0.cell": ["l0.c", "l0.h"], "l1.cell": ["l1.c", "l1.h"], "l0.input": ["l0.c", "l0.h"],
        "l1.input": ["l1.c", "l1.h"], "output": ["output"]}),
    ("lstm", "zoneout:p_cell=0.3,p_hidden=0.2", FloatTask(), {
        "l0.zoneout_cell": ["l0.c"], "l0.zoneout_hidden": ["l0.h"], "l1.zoneout_cell": ["l1.c"]}),
    ("lstm", "output-zoneout:p=0.3", FloatTask(), {
        "l0.update": ["l0.c", "l0.h"], "l0.output_gate": ["l0.h"], "l1.output_gate": ["l1.h"]}),
    ("gru", "gal:p=0.3,p_embedding=0.2,tied=false", TokenTask(), {
        "embedding": ["l0.h"], "l0.recurrent": ["l0.h"], "l1.input": ["l1.h"]}),
    ("rnn", "weight-drop:p=0.4,scaling=expectation", FloatTask(), {
        "l0.weight": ["l0.h"], "l1.weight": ["l1.h"]}),
])
def test_every_mask_is_where_and_as_declared(cell, scheme, task, where):
    n = net(cell, scheme, layers=2, task=task)
    r = AUDIT(n, task)
    assert r.summary["mismatches"] == []
    masks = r.summary["masks"]
    assert set(masks) == set(n.mask_plan().keys())
    for key, place in where.items():
        assert masks[key]["acts_on"] == place, key
    f = r.frame
    assert _value(f, "sampler_replay") == 0.0 and _value(f, "eval_vs_expected") == 0.0
    for e in n.mask_plan().entries:
        assert masks[e.key]["test_value"] == pytest.approx(e.spec.test_value)
        assert masks[e.key]["sampling"] == e.spec.sampling and masks[e.key]["p"] == e.spec.p


def _value(frame, quantity, mask=None):
    sel = frame[frame.quantity == quantity]
    sel = sel[sel["mask"].isna()] if mask is None else sel[sel["mask"] == mask]
    return sel["value"].item()


def test_statistics_of_masks_of_known_layout():
    """By hand: a per-step mask that alternates 0/2 along time changes at every step and
    between the two sequences; a per-sequence one never changes along time."""
    step = MaskEntry("l0.cell", SiteSpec(0.5, "step"), (1,))
    m = torch.tensor([[[0.0], [2.0]], [[2.0], [0.0]], [[0.0], [2.0]]])  # [T=3, B=2, 1]
    s = mask_statistics(step, [m])
    assert s["drop_rate"] == (0.5, 6) and s["kept_value"] == (2.0, 3)
    assert s["step_change"] == (1.0, 4) and s["sequence_change"] == (1.0, 3)
    seq = MaskEntry("l0.cell", SiteSpec(0.5, "sequence", scaling="expectation"), (2,))
    s = mask_statistics(seq, [torch.tensor([[1.0, 0.0], [1.0, 1.0]])])
    assert s["step_change"] == (0.0, 0) and s["sequence_change"] == (0.5, 2)
    assert s["kept_value"][0] == 1.0 and s["drop_rate"][0] == 0.25
    zone = MaskEntry("l0.zoneout_cell", SiteSpec(0.3, "step", kind="zoneout"), (1,))
    assert "kept_value" not in mask_statistics(zone, [torch.ones(2, 1, 1)])
    assert mask_statistics(zone, [torch.ones(2, 1, 1)])["drop_rate"] == (1.0, 2)
    want = declared_statistics(MaskEntry("w", SiteSpec(0.4, "forward"), (4, 2)))
    assert want == {"drop_rate": 0.4, "step_change": 0.0, "sequence_change": 0.0,
                    "kept_value": pytest.approx(1 / 0.6)}
    assert declared_statistics(step)["step_change"] == 0.5  # 2 p (1 - p)
    assert acts_on({"l1.h": 0, "l0.h": 1, "l0.c": 2, "output": 0}) == ["l0.h"]
    assert acts_on({"output": 0}) == ["output"]


class _OtherScalingAtTest(Net):
    """Declares inverted dropout but multiplies by 1-p at test time."""

    def forward(self, input, hx=None, *, masks=None, stochastic=None, generator=None):
        if masks is None and not (self.training if stochastic is None else stochastic):
            masks = expected_masks(self, other=True)
        return super().forward(input, hx, masks=masks, stochastic=stochastic,
                               generator=generator)


@dataclass(frozen=True)
class _DoubleRatePlan(MaskPlan):
    """A sampler that drops at twice the declared rate."""

    def sample(self, T, B, *, generator=None, device=None, dtype=torch.float32):
        fast = MaskPlan(tuple(MaskEntry(e.key, SiteSpec(min(2 * e.spec.p, 0.9), e.spec.sampling,
                                                        e.spec.kind, e.spec.scaling),
                                        e.shape) for e in self.entries))
        return fast.sample(T, B, generator=generator, device=device, dtype=dtype)


class _DoubleRate(Net):
    def mask_plan(self):
        return _DoubleRatePlan(super().mask_plan().entries)


def test_a_model_that_does_not_do_what_it_declares_is_caught():
    task = FloatTask()
    honest = net("lstm", "moon:p=0.3")
    liar = _OtherScalingAtTest(honest.config)
    liar.load_state_dict(honest.state_dict())
    r = AUDIT(liar, task)
    assert "net:eval_vs_expected" in r.summary["mismatches"]
    assert "l0.cell:test_value" in r.summary["mismatches"]
    assert r.summary["masks"]["l0.cell"]["test_value"] == pytest.approx(0.7)  # 1 - p, measured
    fast = _DoubleRate(honest.config)
    fast.load_state_dict(honest.state_dict())
    r = AUDIT(fast, task)
    assert {"net:sampler_replay", "l0.cell:drop_rate"} <= set(r.summary["mismatches"])
    assert r.summary["masks"]["l0.cell"]["drop_rate"] == pytest.approx(0.6, abs=0.1)


def test_no_masks_and_bad_parameters():
    r = MaskAudit(draws=2)(net("gru", "none"), FloatTask())
    assert set(r.frame.quantity) == {"sampler_replay", "eval_vs_expected"}
    assert r.summary["masks"] == {} and r.summary["mismatches"] == []
    for kw in ({"draws": 0}, {"length": 0}, {"split": "dev"}):
        with pytest.raises(ValueError):
            MaskAudit(**kw)
