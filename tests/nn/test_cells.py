"""memloss.nn.LSTMCell/GRUCell/RNNCell: torch's cells with scheme=, one step per call, equal
to the one-layer layer on the same masks, with a sequence's masks held across steps."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import memloss.nn as mnn
from memloss.models.schemes import list_schemes

I, H, B, T = 3, 5, 4, 6

PAIRS = [(mnn.LSTMCell, nn.LSTMCell, mnn.LSTM, {}), (mnn.GRUCell, nn.GRUCell, mnn.GRU, {}),
         (mnn.RNNCell, nn.RNNCell, mnn.RNN, {"nonlinearity": "relu"})]


@pytest.mark.parametrize("ours, theirs, _, kw", PAIRS)
def test_state_dicts_are_torchs_and_scheme_none_computes_what_torch_computes(ours, theirs, _, kw):
    torch.manual_seed(0)
    ref = theirs(I, H, **kw)
    cell = ours(I, H, scheme="none", **kw)
    assert list(cell.state_dict()) == list(ref.state_dict())
    cell.load_state_dict(ref.state_dict())
    ref.load_state_dict(cell.state_dict())
    x, hx = torch.randn(B, I), None
    hr = None
    for _ in range(3):
        hx = cell(x, hx)
        hr = ref(x, hr)
        torch.testing.assert_close(hx, hr)
    torch.testing.assert_close(cell(x[0]), ref(x[0]))  # unbatched
    no_bias = ours(I, H, bias=False, **kw)
    assert [n for n, _ in no_bias.named_parameters()] == ["weight_ih", "weight_hh"]


def _step_outputs(cell, x, masks):
    hx, outs = None, []
    for t in range(x.shape[0]):
        hx = cell(x[t], hx, masks=cell.masks_at(masks, t))
        outs.append(hx[0] if isinstance(hx, tuple) else hx)
    return torch.stack(outs), hx


@pytest.mark.parametrize("scheme", [s for s in list_schemes() if s != "torch-dropout"])
@pytest.mark.parametrize("ours, _, layer_class, kw", PAIRS[:2])
def test_a_step_equals_the_layers_step_on_the_same_masks(scheme, ours, _, layer_class, kw):
    torch.manual_seed(1)
    try:
        layer = layer_class(I, H, scheme=scheme, path="reference", **kw)
    except ValueError as e:  # a scheme of the LSTM's cell state on a GRU
        assert "which a gru cell does not have" in str(e)
        pytest.skip(str(e))
    cell = ours(I, H, scheme=scheme, **kw)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    masks = layer.mask_plan().sample(T, B, generator=torch.Generator().manual_seed(2))
    x = torch.randn(T, B, I)
    out, h_n = layer(x, masks=masks)
    steps, final = _step_outputs(cell, x, masks)
    om = masks.get("output")  # the stack's output mask: the caller's, applied here
    if om is not None:
        steps = steps * (om if om.dim() == 3 else om.unsqueeze(0))
    torch.testing.assert_close(steps, out)
    final = final if isinstance(final, tuple) else (final,)
    h_n = h_n if isinstance(h_n, tuple) else (h_n,)
    for a, b in zip(final, h_n):
        torch.testing.assert_close(a, b[0])


def test_sequence_masks_are_held_until_a_new_sequence():
    cell = mnn.LSTMCell(I, H, scheme="gal:p=0.5")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, I)
    hx = cell(x[0], generator=gen)
    held = dict(cell._held)
    outs = [hx[0]]
    for t in range(1, T):
        hx = cell(x[t], hx, generator=gen)
        outs.append(hx[0])
        assert all(cell._held[k] is v for k, v in held.items())
    replay, _ = _step_outputs(cell, x, {k: v for k, v in held.items()})  # the same masks
    torch.testing.assert_close(replay, torch.stack(outs))
    cell(x[0], generator=gen)  # hx=None: a new sequence
    assert not torch.equal(cell._held["l0.recurrent"], held["l0.recurrent"])
    again = dict(cell._held)
    cell.reset_masks()
    cell(x[0], hx, generator=gen)
    assert not torch.equal(cell._held["l0.recurrent"], again["l0.recurrent"])
    with pytest.raises(ValueError, match=r"a batch of 2 but the sequence's masks were drawn "
                                         r"for 4; start a new sequence with hx=None or "
                                         r"reset_masks\(\)"):
        cell(x[0, :2], tuple(s[:2] for s in hx))


def test_step_masks_are_drawn_every_step_and_eval_uses_expectations():
    cell = mnn.LSTMCell(I, H, scheme="semeniuta:p=0.5,sampling=step")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(B, I)
    h0 = cell(x, generator=gen)
    assert cell._held == {}  # nothing is per sequence
    a, b = cell(x, h0, generator=gen), cell(x, h0, generator=gen)
    assert not torch.equal(a[1], b[1])
    cell.eval()
    e1, e2 = cell(x, h0), cell(x, h0)
    assert torch.equal(e1[0], e2[0]) and cell._held is None


def test_cells_reload_under_weights_only(tmp_path):
    cell = mnn.GRUCell(I, H, scheme="gal")
    torch.save(cell, tmp_path / "c.pt")
    back = torch.load(tmp_path / "c.pt")
    assert repr(back) == repr(cell) and back.mask_plan() == cell.mask_plan()
    assert "output" not in back.sites


def test_bad_input_is_one_clear_error():
    cell = mnn.LSTMCell(I, H)
    with pytest.raises(ValueError, match=r"expected input to be 1-D \(unbatched\) or 2-D"):
        cell(torch.randn(T, B, I))
    with pytest.raises(ValueError, match=r"hx for LSTMCell must be a tuple \(h, c\)"):
        cell(torch.randn(B, I), torch.zeros(B, H))
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        mnn.RNNCell(I, H, nonlinearity="gelu")
