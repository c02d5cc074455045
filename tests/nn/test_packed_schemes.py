"""For every scheme: a packed batch (and a padded one with lengths) equals running each
sequence alone with the same masks, in both directions and on every path that runs it."""
from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import memloss.nn as mnn
from memloss.models.paths import native_eligible

I, H, T = 3, 4, 5
LENGTHS = [3, 5, 1, 4]
SCHEMES = ["none", "zaremba:p=0.4", "gal:p=0.3,p_recurrent=0.3", "gal:p=0.3,tied=false",
           "moon:p=0.3", "moon:p=0.3,sampling=step", "semeniuta:p=0.3",
           "zoneout:p_cell=0.3,p_hidden=0.2", "output-zoneout:p=0.3", "hidden-dropout:p=0.3",
           "weight-drop:p=0.3", "torch-dropout:p=0.3+semeniuta:p=0.2"]


def _alone(masks, plan, b, L):
    out = {}
    for k, m in masks.items():
        e = plan.get(k)
        out[k] = m[:L, b:b + 1] if e.spec.sampling == "step" else (
            m if e.spec.sampling == "forward" else m[b:b + 1])
    return out


@pytest.mark.parametrize("path", ["reference", "fused", "native"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_packed_equals_each_sequence_alone(scheme, path):
    torch.manual_seed(0)
    lstm = mnn.LSTM(I, H, 2, bidirectional=True, scheme=scheme, path="reference",
                    dtype=torch.float64).train()
    if path == "native" and not native_eligible(lstm.sites, lstm.cell):
        pytest.skip("the native path does not run this scheme")
    lstm.path = path
    B = len(LENGTHS)
    x = torch.randn(T, B, I, dtype=torch.float64)
    plan = lstm.mask_plan()
    masks = plan.sample(T, B, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor(LENGTHS), enforce_sorted=False)
    out, h_n = lstm(packed, masks=masks)
    out, _ = pad_packed_sequence(out, total_length=T)
    for b, L in enumerate(LENGTHS):
        y, hb = lstm(x[:L, b:b + 1], masks=_alone(masks, plan, b, L))
        torch.testing.assert_close(out[:L, b:b + 1], y, atol=1e-12, rtol=0)
        assert bool((out[L:, b] == 0).all())
        for s, sb in zip(h_n, hb):
            torch.testing.assert_close(s[:, b:b + 1], sb, atol=1e-12, rtol=0)
