"""The behaviours PyTorch's own RNN tests check, run on torch.nn and memloss.nn (scheme none):
output and state shapes for every combination of batch_first / bidirectional / proj_size /
batched or not, packed versus padded, hx validation, flatten_parameters, state-dict round
trips both ways; the two agree to 1e-6 in float32 and 1e-12 in float64."""
from __future__ import annotations

import itertools
import warnings

import pytest
import torch
from torch import nn as tnn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pack_sequence, pad_packed_sequence

import memloss.nn as mnn
from memloss.models import Recurrent

I, H, P, T, B = 3, 5, 2, 4, 3
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
PATHS = ("auto", "reference", "fused")


def _pair(kind, dtype=torch.float64, path="auto", **kw):
    """A torch.nn module and the memloss.nn one built the same way from the same seed."""
    torch.manual_seed(0)
    ref = getattr(tnn, kind)(I, H, dtype=dtype, **kw)
    torch.manual_seed(0)
    got = getattr(mnn, kind)(I, H, dtype=dtype, path=path, **kw)
    return ref, got


def _flat(out):
    if isinstance(out, PackedSequence):
        return [out.data]
    if isinstance(out, tuple):
        return [t for o in out for t in _flat(o)]
    return [out]


def _close(a, b, dtype):
    fa, fb = _flat(a), _flat(b)
    assert len(fa) == len(fb)
    for x, y in zip(fa, fb):
        assert x.shape == y.shape and x.dtype == y.dtype
        torch.testing.assert_close(x, y, atol=TOL[dtype], rtol=0)


CONFIGS = [(kind, dict(num_layers=L, batch_first=bf, bidirectional=bd,
                       **({"proj_size": p} if kind == "LSTM" else {})))
           for kind, L, bf, bd, p in itertools.product(("LSTM", "GRU", "RNN"), (1, 2),
                                                         (False, True), (False, True), (0, P))
           if not (p and kind != "LSTM")]


def _ids(c):
    kind, kw = c
    return kind + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind,kw", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_same_weights_same_outputs_batched_and_unbatched(kind, kw, dtype):
    ref, got = _pair(kind, dtype, **kw)
    for (n1, a), (n2, b) in zip(ref.state_dict().items(), got.state_dict().items()):
        assert n1 == n2 and torch.equal(a, b)  # same names, order, shapes and init
    D = 2 if kw["bidirectional"] else 1
    x = torch.randn((B, T, I) if kw["batch_first"] else (T, B, I), dtype=dtype)
    out = ref(x)
    _close(out, got(x), dtype)
    assert out[0].shape[-1] == D * (kw.get("proj_size") or H)
    # with a given state, and unbatched ([T, I], state [L*D, H])
    h = ref(x)[1]
    _close(ref(x, h), got(x, h), dtype)
    xu = torch.randn(T, I, dtype=dtype)
    _close(ref(xu), got(xu), dtype)
    hu = ref(xu)[1]
    _close(ref(xu, hu), got(xu, hu), dtype)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind,kw", [c for c in CONFIGS if c[1]["num_layers"] == 2],
                         ids=[_ids(c) for c in CONFIGS if c[1]["num_layers"] == 2])
def test_packed_equals_torch_and_padded(kind, kw, path):
    dtype = torch.float64
    ref, got = _pair(kind, dtype, path=path, **kw)
    lengths = torch.tensor([2, 4, 1])
    x = torch.randn((B, T, I) if kw["batch_first"] else (T, B, I), dtype=dtype)
    packed = pack_padded_sequence(x, lengths, batch_first=kw["batch_first"], enforce_sorted=False)
    out_ref, out_got = ref(packed), got(packed)
    assert isinstance(out_got[0], PackedSequence)
    assert torch.equal(out_got[0].batch_sizes, out_ref[0].batch_sizes)
    assert torch.equal(out_got[0].unsorted_indices, out_ref[0].unsorted_indices)
    _close(out_ref, out_got, dtype)
    # the padded tensor with lengths gives the same as the packed one
    padded, _ = pad_packed_sequence(out_got[0], batch_first=kw["batch_first"], total_length=T)
    direct, h_direct = Recurrent.forward(got, x, lengths=lengths)
    torch.testing.assert_close(direct, padded, atol=1e-12, rtol=0)
    _close(out_got[1], h_direct, dtype)


def test_packed_sorted_and_a_given_state():
    ref, got = _pair("LSTM", num_layers=2, bidirectional=True)
    seqs = [torch.randn(n, I, dtype=torch.float64) for n in (4, 3, 1)]
    h0 = (torch.randn(4, 3, H, dtype=torch.float64), torch.randn(4, 3, H, dtype=torch.float64))
    p = pack_sequence(seqs)
    _close(ref(p, h0), got(p, h0), torch.float64)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_wrong_hx_is_a_value_error(kind):
    _, got = _pair(kind, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I, dtype=torch.float64)
    good = torch.zeros(4, B, H, dtype=torch.float64)
    bad = [torch.zeros(2, B, H, dtype=torch.float64), torch.zeros(4, B + 1, H, dtype=torch.float64),
           torch.zeros(4, B, H + 1, dtype=torch.float64), torch.zeros(B, H, dtype=torch.float64)]
    for h in bad:
        hx = (h, good) if kind == "LSTM" else h
        with pytest.raises(ValueError, match="h_0"):
            got(x, hx)
    if kind == "LSTM":
        with pytest.raises(ValueError, match="tuple"):
            got(x, good)
    with pytest.raises(ValueError, match="unbatched 2-D"):  # unbatched input, batched state
        got(x[:, 0], (good, good) if kind == "LSTM" else good)


def test_proj_hx_widths_are_checked():
    _, got = _pair("LSTM", proj_size=P)
    x = torch.randn(T, B, I, dtype=torch.float64)
    hp, c = torch.zeros(1, B, P, dtype=torch.float64), torch.zeros(1, B, H, dtype=torch.float64)
    got(x, (hp, c))
    with pytest.raises(ValueError, match="proj_size"):
        got(x, (c, c))


def test_bad_input_and_lengths_are_value_errors():
    _, got = _pair("LSTM", num_layers=2)
    with pytest.raises(ValueError, match="2-D .* or 3-D"):
        got(torch.randn(1, T, B, I, dtype=torch.float64))
    bad = PackedSequence(torch.randn(6, I, dtype=torch.float64), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="batch_sizes .* increase"):
        got(bad)
    x = torch.randn(T, B, I, dtype=torch.float64)
    for lengths, msg in (([1, 2], "one length per sequence"), ([0, 2, 3], r"\[1, T=4\]"),
                         ([1.5, 2, 3], "integers"), (torch.tensor([1.0, 2, 3]), "integers")):
        with pytest.raises(ValueError, match=msg):
            Recurrent.forward(got, x, lengths=lengths)


def test_unsupported_combinations_are_value_errors():
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        mnn.RNNBase("GRU", I, H, proj_size=2)
    with pytest.raises(ValueError, match="smaller than hidden_size"):
        mnn.LSTM(I, H, proj_size=H)
    with pytest.raises(ValueError, match="inside the recurrence"):
        mnn.LSTM(I, H, proj_size=2, scheme="semeniuta")
    with pytest.raises(ValueError, match="dropout should be a number"):
        mnn.LSTM(I, H, dropout=1.5)
    with pytest.raises(ValueError, match="both place a mask"):
        mnn.LSTM(I, H, 2, dropout=0.2, scheme="torch-dropout:p=0.3")
    with pytest.raises(ValueError, match="nonlinearity"):
        mnn.RNN(I, H, nonlinearity="sigmoid")
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        mnn.LSTM(I, H, dropout=0.2)


@pytest.mark.parametrize("kind,kw", CONFIGS[::3], ids=[_ids(c) for c in CONFIGS[::3]])
def test_state_dicts_load_both_ways(kind, kw):
    torch.manual_seed(1)
    ref = getattr(tnn, kind)(I, H, **kw)
    torch.manual_seed(2)
    got = getattr(mnn, kind)(I, H, **kw)
    got.load_state_dict(ref.state_dict())
    x = torch.randn((B, T, I) if kw["batch_first"] else (T, B, I))
    _close(ref(x), got(x), torch.float32)
    torch.manual_seed(3)
    other = getattr(mnn, kind)(I, H, **kw)
    ref.load_state_dict(other.state_dict())
    _close(ref(x), other(x), torch.float32)


def test_torch_attributes_and_flatten_parameters():
    ref, got = _pair("LSTM", num_layers=2, bidirectional=True, proj_size=P, dropout=0.25)
    for name in ("mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first",
                 "dropout", "bidirectional", "proj_size", "_flat_weights_names", "_all_weights"):
        assert getattr(got, name) == getattr(ref, name), name
    assert [[w.shape for w in ws] for ws in got.all_weights] == \
        [[w.shape for w in ws] for ws in ref.all_weights]
    assert all(a is b for a, b in zip(got._flat_weights, got.parameters()))
    assert "dropout=0.25" in repr(got) and "torch-dropout:p=0.25" in repr(got)
    got.flatten_parameters()  # a no-op that keeps torch.nn code running
    got.double().flatten_parameters()
    assert got.weight_hr_l1_reverse.dtype == torch.float64
    rnn = mnn.RNN(I, H, 1, "relu")
    assert rnn.mode == "RNN_RELU" and rnn.nonlinearity == "relu"
    assert mnn.GRU(I, H).mode == "GRU"


def test_dropout_is_torchs_between_layer_dropout():
    """dropout=p: eval is deterministic and equal to torch's; training drops each layer's
    output but the last's with a new inverted mask every step, the same for both directions."""
    ref, got = _pair("LSTM", num_layers=2, bidirectional=True, dropout=0.5)
    x = torch.randn(T, B, I, dtype=torch.float64)
    _close(ref.eval()(x), got.eval()(x), torch.float64)
    plan = got.mask_plan()
    assert plan.keys() == ["l1.between"]
    masks = plan.sample(T, B, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert masks["l1.between"].shape == (T, B, 2 * H)
    assert set(masks["l1.between"].unique().tolist()) <= {0.0, 2.0}
    # the same as running layer by layer with the mask on layer 0's output
    first, second = (tnn.LSTM(I, H, bidirectional=True, dtype=torch.float64),
                     tnn.LSTM(2 * H, H, bidirectional=True, dtype=torch.float64))
    sd = got.state_dict()
    for mod, k in ((first, 0), (second, 1)):
        mod.load_state_dict({n.replace(f"_l{k}", "_l0"): v for n, v in sd.items() if f"_l{k}" in n})
    y0, _ = first(x)
    want, _ = second(y0 * masks["l1.between"])
    got_out, _ = got.train()(x, masks=masks)
    torch.testing.assert_close(got_out, want, atol=1e-12, rtol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mnn.LSTM(I, H, 2, dropout=0.3)  # no warning with a stack
