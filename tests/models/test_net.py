"""Net: embedding/float input, head, state carry, masks through the whole net."""
from __future__ import annotations

import pytest
import torch

from memloss.models import Net, NetConfig


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_state_carry_equals_one_long_sequence(cell):
    torch.manual_seed(0)
    net = Net(NetConfig(cell=cell, vocab_size=11, embedding_dim=6, hidden_size=5,
                        num_layers=2, output_size=11, scheme="semeniuta:p=0.3")).eval()
    x = torch.randint(0, 11, (3, 12))
    full, h_full = net(x)
    a, h = net(x[:, :7])
    b, h2 = net(x[:, 7:], h)
    torch.testing.assert_close(torch.cat([a, b], 1), full)
    for u, v in zip(h2 if cell == "lstm" else (h2,), h_full if cell == "lstm" else (h_full,)):
        torch.testing.assert_close(u, v)


def test_net_masks_replay_including_embedding():
    torch.manual_seed(0)
    net = Net(NetConfig(vocab_size=9, hidden_size=4, output_size=9, num_layers=2,
                        scheme="gal:p=0.3,p_embedding=0.4,tied=false")).train()
    x = torch.randint(0, 9, (2, 5))
    plan = net.mask_plan()
    assert plan.keys()[0] == "embedding"
    masks = plan.sample(5, 2, generator=torch.Generator().manual_seed(4))
    out1, _ = net(x, masks=masks)
    out2, _ = net(x, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(out1, out2)
    assert out1.shape == (2, 5, 9)


def test_init_range_and_float_input():
    net = Net(NetConfig(input_size=3, hidden_size=4, output_size=2, init_range=0.05))
    assert all(p.abs().max() <= 0.05 for p in net.parameters())
    out, (h, c) = net(torch.randn(2, 6, 3))
    assert out.shape == (2, 6, 2) and h.shape == (1, 2, 4)
    assert NetConfig(input_size=3).to_dict()["scheme"] == "none"


def _step_masks(net, masks, t):
    """Step ``t``'s masks as a T = 1 mask set (per-step masks sliced)."""
    plan = net.mask_plan()
    return {k: (m[t:t + 1] if plan.get(k).spec.sampling == "step" and m.dim() > 0 else m)
            for k, m in masks.items()}


@pytest.mark.parametrize("path", ["reference", "fused"])
@pytest.mark.parametrize("cell,scheme", [
    ("lstm", "output-zoneout:p=0.3+zaremba:p=0.2"), ("layernorm-lstm", "output-zoneout:p=0.3"),
    ("lstm", "zoneout:p_cell=0.3,p_hidden=0.2"), ("gru", "semeniuta:p=0.3,sampling=sequence"),
])
@pytest.mark.parametrize("train", [True, False], ids=["sampled", "expected"])
def test_one_step_at_a_time_equals_the_full_sequence(cell, scheme, train, path):
    """Passing the returned state back in (with each step's masks) replays the full
    forward, the carried output gate of Krueger's output zoneout included."""
    torch.manual_seed(0)
    net = Net(NetConfig(cell=cell, input_size=3, hidden_size=5, num_layers=2, output_size=4,
                        scheme=scheme, path=path)).double()
    T, B = 6, 3
    x = torch.randn(B, T, 3, dtype=torch.float64)
    plan = net.mask_plan()
    masks = plan.sample(T, B, generator=torch.Generator().manual_seed(1),
                        dtype=torch.float64) if train else plan.expected(dtype=torch.float64)
    full, h_full = net(x, masks=masks)
    outs, h = [], None
    for t in range(T):
        out, h = net(x[:, t:t + 1], h, masks=_step_masks(net, masks, t))
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, 1), full)
    for a, b in zip(h if isinstance(h, tuple) else (h,),
                    h_full if isinstance(h_full, tuple) else (h_full,)):
        torch.testing.assert_close(a, b)
    assert len(net.rnn.state_names) == len(h if isinstance(h, tuple) else (h,))


def test_output_zoneout_state_layout():
    net = Net(NetConfig(input_size=3, hidden_size=5, num_layers=2, scheme="output-zoneout"))
    assert net.rnn.state_names == ("h", "c", "o")
    assert Net(NetConfig(input_size=3, hidden_size=5)).rnn.state_names == ("h", "c")
    out, (h, c, o) = net(torch.randn(2, 4, 3))
    assert h.shape == c.shape == o.shape == (2, 2, 5)
    # (h, c) alone starts the output gate afresh; a wrong tuple is one clear error
    net(torch.randn(2, 4, 3), (h, c))
    with pytest.raises(ValueError, match=r"tuple \(h_0, c_0, o_0\) or \(h_0, c_0\)"):
        net(torch.randn(2, 4, 3), (h,))


def test_layernorm_lstm_parameters_and_forget_bias():
    net = Net(NetConfig(cell="layernorm-lstm", input_size=3, hidden_size=4, forget_bias=1.0,
                        init_range=0.1))
    names = {n for n, _ in net.rnn.named_parameters()}
    assert names == {"weight_ih_l0", "weight_hh_l0", "bias_l0", "ln_ih_weight_l0",
                     "ln_hh_weight_l0", "ln_cell_weight_l0", "ln_cell_bias_l0"}
    rnn = net.rnn
    assert torch.equal(rnn.ln_ih_weight_l0, torch.ones(16)) and torch.equal(
        rnn.ln_cell_bias_l0, torch.zeros(4))
    assert torch.equal(rnn.bias_l0[4:8], torch.ones(4))
    assert rnn.weight_ih_l0.abs().max() <= 0.1
    with pytest.raises(ValueError, match="forget gate.*lstm, layernorm-lstm.*'gru'"):
        NetConfig(cell="gru", input_size=3, forget_bias=1.0)
