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
