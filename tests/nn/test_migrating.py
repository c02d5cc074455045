"""docs/migrating.md, checked: each regularizer users already have, re-implemented here in a
few lines of torch from its documented computation, equals the memloss scheme the document
maps it to when both run under the same explicit masks (float64, to 1e-12)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

import memloss.nn as mnn
from memloss.models import Net, NetConfig

T, B, I, H = 6, 3, 5, 4
TOL = dict(rtol=1e-12, atol=1e-12)


def keep(shape, p, g):
    """An inverted-dropout mask: kept units 1/(1-p), dropped 0."""
    return (torch.rand(shape, generator=g, dtype=torch.float64) >= p).double() / (1 - p)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def torch_lstm(num_layers=1, input_size=I):
    torch.manual_seed(0)
    return nn.LSTM(input_size, H, num_layers, dtype=torch.float64)


def copy_of(lstm, scheme, **kw):
    m = mnn.LSTM(lstm.input_size, H, lstm.num_layers, scheme=scheme, dtype=torch.float64, **kw)
    m.load_state_dict(lstm.state_dict())
    return m


def layer(lstm, k):
    """Layer ``k`` of a stacked nn.LSTM as a one-layer nn.LSTM (the same weights)."""
    one = nn.LSTM(lstm.input_size if k == 0 else H, H, dtype=torch.float64)
    one.load_state_dict({n.replace(f"_l{k}", "_l0"): v for n, v in lstm.state_dict().items()
                         if n.endswith(f"_l{k}")})
    return one


def keras_lstm(x, lstm, dp, rdp):
    """Keras 3 LSTMCell.call, implementation 1 (what recurrent_dropout > 0 selects): one
    input mask and one recurrent mask per gate (i, f, c, o), drawn once per call; one bias."""
    Wi, Wh = lstm.weight_ih_l0.chunk(4), lstm.weight_hh_l0.chunk(4)
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).chunk(4)
    h = c = x.new_zeros(x.shape[1], H)
    out = []
    for xt in x:
        z = [(xt * dp[g]) @ Wi[g].T + b[g] + (h * rdp[g]) @ Wh[g].T for g in range(4)]
        c = torch.sigmoid(z[1]) * c + torch.sigmoid(z[0]) * torch.tanh(z[2])
        h = torch.sigmoid(z[3]) * torch.tanh(c)
        out.append(h)
    return torch.stack(out), h, c


def test_keras_dropout_and_recurrent_dropout_are_untied_gal(gen):
    lstm = torch_lstm()
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    dp, rdp = keep((4, B, I), 0.2, gen), keep((4, B, H), 0.3, gen)
    ref, h, c = keras_lstm(x, lstm, dp, rdp)
    m = copy_of(lstm, "gal:p=0.2,p_recurrent=0.3,tied=false")
    masks = {"l0.input": dp.transpose(0, 1), "l0.recurrent": rdp.transpose(0, 1),
             "output": torch.ones(B, H, dtype=torch.float64)}  # Keras has no output mask
    out, (h_n, c_n) = m(x, masks=masks)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close((h_n[0], c_n[0]), (h, c), **TOL)


def test_keras_dropout_alone_is_tied_gal(gen):
    """recurrent_dropout=0 keeps Keras' implementation 2: one input mask for every gate."""
    lstm = torch_lstm()
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    dp = keep((B, I), 0.2, gen)
    ref, _ = lstm(x * dp)
    m = copy_of(lstm, "gal:p=0.2,p_recurrent=0")
    out, _ = m(x, masks={"l0.input": dp, "output": torch.ones(B, H, dtype=torch.float64)})
    torch.testing.assert_close(out, ref, **TOL)


def test_awd_weight_drop_is_weight_drop(gen):
    """WeightDrop(rnn, ['weight_hh_l0'], dropout=p): F.dropout of the raw weight_hh once per
    forward (AWD-LSTM wraps each layer's one-layer nn.LSTM)."""
    lstm = torch_lstm(2)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    M = [keep((4 * H, H), 0.4, gen) for _ in range(2)]
    y = x
    for k in range(2):
        one = layer(lstm, k)
        y, _ = functional_call(one, {**dict(one.named_parameters()),
                                     "weight_hh_l0": one.weight_hh_l0 * M[k]}, (y,))
    out, _ = copy_of(lstm, "weight-drop:p=0.4")(x, masks={"l0.weight": M[0], "l1.weight": M[1]})
    torch.testing.assert_close(out, y, **TOL)


def test_awd_locked_dropout_is_gal_without_recurrent_masks(gen):
    """LockedDropout: one [1, B, F] mask for all steps, inverted scaling; AWD-LSTM applies
    it to the embedded input (dropouti), between layers (dropouth) and to the last output
    (dropout)."""
    lstm = torch_lstm(2)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    m0, m1, m2 = keep((B, I), 0.3, gen), keep((B, H), 0.3, gen), keep((B, H), 0.3, gen)
    y, _ = layer(lstm, 0)(x * m0)
    y, _ = layer(lstm, 1)(y * m1)
    ref = y * m2
    out, _ = copy_of(lstm, "gal:p=0.3,p_recurrent=0")(
        x, masks={"l0.input": m0, "l1.input": m1, "output": m2})
    torch.testing.assert_close(out, ref, **TOL)


def test_awd_embedded_dropout_is_embedding_dropout_with_one_mask_per_batch(gen):
    """embedded_dropout: a [V, 1] keep mask over the embedding matrix's rows (word types),
    inverted, one per call and so shared by the whole batch; memloss draws one per
    sequence, so the batch rows of the mask are set equal here."""
    V, E = 9, 5
    torch.manual_seed(0)
    net = Net(NetConfig(vocab_size=V, embedding_dim=E, hidden_size=H, output_size=V,
                        scheme="gal:p=0,p_recurrent=0,p_embedding=0.25")).double()
    words = torch.randint(V, (B, T), generator=gen)
    row = keep((V,), 0.25, gen)
    emb = F.embedding(words, net.embedding.weight * row[:, None])
    lstm = nn.LSTM(E, H, batch_first=True, dtype=torch.float64)
    lstm.load_state_dict(net.rnn.state_dict())
    ref = net.head(lstm(emb)[0])
    out, _ = net(words, masks={"embedding": row.expand(B, V)})
    torch.testing.assert_close(out, ref, **TOL)


def haste_lstm(x, lstm, R_mask, z_mask, zoneout, training):
    """haste_pytorch.LSTM's reference loop (LSTMScript), in its layout: kernel [I, 4H] and
    recurrent_kernel [H, 4H] with gates i, g, f, o, one bias; ``dropout`` is F.dropout of
    recurrent_kernel (here the explicit mask ``R_mask``); zoneout acts on h only: in
    training h = (h_new - h_prev) * mask + h_prev with mask ~ Bernoulli(1 - zoneout) per
    step and unit, at test h = zoneout * h_prev + (1 - zoneout) * h_new."""
    def igfo(w):  # torch's i, f, g, o rows -> haste's i, g, f, o columns
        i, f, g, o = w.chunk(4)
        return torch.cat([i, g, f, o]).T
    kernel, rec = igfo(lstm.weight_ih_l0), igfo(lstm.weight_hh_l0) * R_mask
    bias = igfo((lstm.bias_ih_l0 + lstm.bias_hh_l0)[:, None])[0]
    h = c = x.new_zeros(x.shape[1], H)
    out = []
    for t, xt in enumerate(x):
        i, g, f, o = (h @ rec + xt @ kernel + bias).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        new = torch.sigmoid(o) * torch.tanh(c)
        h = (new - h) * z_mask[t] + h if training else zoneout * h + (1 - zoneout) * new
        out.append(h)
    return torch.stack(out), h, c


def test_haste_dropout_and_zoneout_are_weight_drop_and_hidden_zoneout(gen):
    lstm = torch_lstm()
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    R = keep((H, 4 * H), 0.3, gen)  # haste's layout
    z = (torch.rand(T, B, H, generator=gen, dtype=torch.float64) >= 0.2).double()  # 1 = new
    m = copy_of(lstm, "weight-drop:p=0.3+zoneout:p_cell=0,p_hidden=0.2")
    i, g, f, o = R.T.chunk(4)  # haste's i, g, f, o -> torch's i, f, g, o rows
    masks = {"l0.weight": torch.cat([i, f, g, o]), "l0.zoneout_hidden": 1 - z}
    ref, h, c = haste_lstm(x, lstm, R, z, 0.2, training=True)
    out, (h_n, c_n) = m(x, masks=masks)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close((h_n[0], c_n[0]), (h, c), **TOL)
    # at test time: no DropConnect, and the expectation of the zoneout mask
    ref, _, _ = haste_lstm(x, lstm, torch.ones_like(R), None, 0.2, training=False)
    torch.testing.assert_close(m.eval()(x)[0], ref, **TOL)


def test_torch_dropout_is_torch_dropout_scheme(gen):
    """nn.LSTM(dropout=p): F.dropout (a new mask every step, unit and sequence, inverted) on
    the output of every layer but the last."""
    lstm = torch_lstm(3)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    M = [keep((T, B, H), 0.25, gen) for _ in range(2)]
    y, _ = layer(lstm, 0)(x)
    y, _ = layer(lstm, 1)(y * M[0])
    ref, _ = layer(lstm, 2)(y * M[1])
    for m in (copy_of(lstm, "torch-dropout:p=0.25"), copy_of(lstm, None, dropout=0.25)):
        out, _ = m(x, masks={"l1.between": M[0], "l2.between": M[1]})
        torch.testing.assert_close(out, ref, **TOL)
        torch.testing.assert_close(m.eval()(x)[0], lstm.eval()(x)[0], **TOL)
