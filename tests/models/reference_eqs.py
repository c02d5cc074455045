"""A slow reference written straight from the papers' equations, one time step at a time.

Separate per-gate matrices (Gal eq. 5), explicit masks read per step, no shared code with
the package's paths. Gate order follows torch.nn (LSTM i, f, g, o; GRU r, z, n).

LSTM (Zaremba 3.1 / Semeniuta eq. 4-6) with every site:
    x~_k = x_t * zx_k             (input; Zaremba per step, Gal per sequence, per gate k if untied)
    h~_k = h_{t-1} * zh_k         (recurrent; Gal)
    U_k  = U_k * M_k              (weight-drop, once per forward)
    i, f, o = sigm(W_k x~_k + U_k h~_k + b_k),  g = tanh(...)
    g~   = d_upd(g)               (Semeniuta eq. 9)
    c^   = d_cell(f c_{t-1} + i g~)   (Moon, Semeniuta eq. 8)
    o'   = (1 - z_o) o + z_o o'_{t-1} (Krueger 3.3 output-gate zoneout)
    h^   = d_hid(o' tanh(c^))
    c_t  = z_c c_{t-1} + (1 - z_c) c^,  h_t = z_h h_{t-1} + (1 - z_h) h^   (Krueger 3.3)
GRU (torch/cuDNN form of Semeniuta eq. 10-13):
    r = sigm(W_r x~ + b_ir + U_r h~ + b_hr), z = sigm(...),
    n = tanh(W_n x~ + b_in + r (U_n h~ + b_hn)),  h^ = (1 - z) d_upd(n) + z h_{t-1}
RNN (Semeniuta eq. 2): h^ = f(W x~ + b_ih + U h~ + b_hh)
LayerNorm-LSTM (Ba et al. 2016 as haste.LayerNormLSTM, lmnt-com/haste issue #1):
    pre_k = LN(W x~)_k * gx_k + LN(U h~)_k * gh_k + b_k  (LN over all 4H pre-activations,
            mean and biased variance, eps 1e-5, no shift), then the LSTM above with
    h^ = d_hid(o' tanh(LN(c^) * gc + bc))
The state of a scheme with output-gate zoneout is (h, c, o'); o' starts as o_0 when not given.

``reference_forward(..., record=rec)`` also reports, per layer and step, the activations
named as each cell declares them (``rec[layer][name]``: a list of [B, H] per step), so the
probes' recorded gates are checked against these equations. A cell without equations here
is refused by name (:data:`CELLS_WRITTEN`), never run through another cell's branch.

Masks derived from the papers rather than read (when masks are sampled, not expectations):
    Krueger 3.3 output-gate variant, with d_t the update's keep indicator (c_t = f c +
    d_t i g): printed formula h_t = ((1 - d_t) o_t + d_t o_{t-1}) tanh(c_t), i.e. z_o = d_t;
    the stated motivation ("prevent ... expose a memory cell which has not been updated"):
    z_o = 1 - d_t.
    Krueger 4, "a shared zoneout mask on cells and hiddens": z_h = z_c (equal rates).
"""
from __future__ import annotations

import torch

#: the cells whose equations this module writes out
CELLS_WRITTEN = ("lstm", "layernorm-lstm", "gru", "rnn")


def _mask(masks, key, t, step):
    m = masks.get(key)
    if m is None:
        return None
    if m.dim() == 0:
        return m
    return m[t] if step.get(key, False) else m


def _gate_mask(m, k):
    """Mask for gate k: per-gate masks are [B, G, N]; tied ones [B, N] or a scalar."""
    if m is None:
        return None
    return m[:, k] if m.dim() == 3 else m


def _ln(v, gain, shift=None, eps=1e-5):
    """Layer normalization over the last axis, written out."""
    mean = v.mean(-1, keepdim=True)
    var = ((v - mean) ** 2).mean(-1, keepdim=True)
    out = (v - mean) / torch.sqrt(var + eps) * gain
    return out if shift is None else out + shift


def _scheme_option(layer, scheme_name, option, default):
    """An option of one of the layer's schemes (a stack's part or the scheme itself)."""
    parts = getattr(layer.scheme, "schemes", (layer.scheme,))
    for s in parts:
        if s.name == scheme_name:
            return getattr(s, option, default)
    return default


def _output_gate_zoneout(reading, d_update):
    """Krueger 3.3 from the update's sampled mask: z_o = d_t (printed formula) or 1 - d_t
    (stated motivation), with d_t = 1 where the update was kept."""
    kept = (d_update != 0).to(d_update.dtype)
    return kept if reading == "printed" else 1 - kept


def reference_forward(layer, x, hx=None, masks=None, record=None):
    """``layer``: a models.Recurrent (weights and scheme read from it). x: [T, B, I].
    ``record``: a list that receives one ``{activation name: [per-step [B, H]]}`` per layer."""
    cell = layer.cell.name
    if cell not in CELLS_WRITTEN:
        raise NotImplementedError(f"tests/models/reference_eqs.py has no equations for cell "
                                  f"{cell!r} (it writes {', '.join(CELLS_WRITTEN)}); add them")
    reading = _scheme_option(layer, "output-zoneout", "reading", "motivation")
    shared = (_scheme_option(layer, "zoneout", "shared", False)
              and _scheme_option(layer, "zoneout", "p_cell", 0)
              == _scheme_option(layer, "zoneout", "p_hidden", 0))
    G, H, L = len(layer.cell.gates), layer.hidden_size, layer.num_layers
    lstm_like = cell in ("lstm", "layernorm-lstm")
    carry_o = any(k.endswith(".output_gate") for k in layer.mask_plan().keys())
    plan = layer.mask_plan()
    masks = masks or {}
    step = {e.key: e.spec.sampling == "step" for e in plan.entries}
    T, B, _ = x.shape
    o0 = None
    if hx is None:
        h0 = x.new_zeros(L, B, H)
        c0 = x.new_zeros(L, B, H)
    elif lstm_like:
        h0, c0, *rest = hx
        o0 = rest[0] if rest else None
    else:
        h0, c0 = hx, None
    inp = x
    hs, cs, os_ = [], [], []
    for l in range(L):
        mb = masks.get(f"l{l}.between")  # torch.nn's dropout=: layer l-1's output, per step
        if mb is not None:
            inp = inp * mb
        W = getattr(layer, f"weight_ih_l{l}").split(H, 0)
        U = list(getattr(layer, f"weight_hh_l{l}").split(H, 0))
        if cell == "layernorm-lstm":
            b = getattr(layer, f"bias_l{l}").split(H, 0)
            bi, bh = b, [0.0] * G
            gx = getattr(layer, f"ln_ih_weight_l{l}")
            gh = getattr(layer, f"ln_hh_weight_l{l}")
            gc, bc = getattr(layer, f"ln_cell_weight_l{l}"), getattr(layer, f"ln_cell_bias_l{l}")
        else:
            bi = getattr(layer, f"bias_ih_l{l}").split(H, 0)
            bh = getattr(layer, f"bias_hh_l{l}").split(H, 0)
        Mw = masks.get(f"l{l}.weight")
        if Mw is not None:
            Mk = Mw.split(H, 0) if Mw.dim() else [Mw] * G
            U = [U[k] * Mk[k] for k in range(G)]
        h, c = h0[l], (c0[l] if c0 is not None else None)
        o_prev = None if o0 is None else o0[l]
        outs = []
        seen = {}
        if record is not None:
            record.append(seen)

        def rec(**values):
            for name, v in values.items():
                seen.setdefault(name, []).append(v)

        for t in range(T):
            def mk(site):
                return _mask(masks, f"l{l}.{site}", t, step)

            zx, zh = mk("input"), mk("recurrent")
            wx, uh = [], []
            for k in range(G):
                xk = inp[t] if zx is None else inp[t] * _gate_mask(zx, k)
                hk = h if zh is None else h * _gate_mask(zh, k)
                wx.append(xk @ W[k].T)
                uh.append(hk @ U[k].T)
            if cell == "layernorm-lstm":  # LN over the 4H pre-activations of each product
                wx = _ln(torch.cat(wx, -1), gx).split(H, -1)
                uh = _ln(torch.cat(uh, -1), gh).split(H, -1)
            pre = [(wx[k] + bi[k], uh[k] + bh[k]) for k in range(G)]
            if lstm_like:
                i = torch.sigmoid(sum(pre[0]))
                f = torch.sigmoid(sum(pre[1]))
                g = torch.tanh(sum(pre[2]))
                o = torch.sigmoid(sum(pre[3]))
                rec(i=i, f=f, g=g, o=o)
                d = mk("update")
                g = g if d is None else g * d
                c_hat = f * c + i * g
                d = mk("cell")
                c_hat = c_hat if d is None else c_hat * d
                zo, d_upd = mk("output_gate"), mk("update")
                if zo is not None and zo.dim() > 0 and d_upd is not None:
                    zo = _output_gate_zoneout(reading, d_upd)
                if zo is not None:
                    prev = o if o_prev is None else o_prev
                    o = (1 - zo) * o + zo * prev
                    o_prev = o
                h_hat = o * torch.tanh(c_hat if cell == "lstm" else _ln(c_hat, gc, bc))
                zc = mk("zoneout_cell")
                c = c_hat if zc is None else zc * c + (1 - zc) * c_hat
            elif cell == "gru":
                r = torch.sigmoid(pre[0][0] + pre[0][1])
                z = torch.sigmoid(pre[1][0] + pre[1][1])
                n = torch.tanh(pre[2][0] + r * pre[2][1])
                rec(r=r, z=z, n=n)
                d = mk("update")
                n = n if d is None else n * d
                h_hat = (1 - z) * n + z * h
            else:  # cell == "rnn"
                a = pre[0][0] + pre[0][1]
                h_hat = torch.tanh(a) if layer.nonlinearity == "tanh" else torch.relu(a)
                rec(h=h_hat)
            d = mk("hidden")
            h_hat = h_hat if d is None else h_hat * d
            zh_ = mk("zoneout_hidden")
            if shared and zh_ is not None and zh_.dim() > 0:
                zh_ = mk("zoneout_cell")
            h = h_hat if zh_ is None else zh_ * h + (1 - zh_) * h_hat
            outs.append(h)
        inp = torch.stack(outs)
        hs.append(h)
        cs.append(c)
        os_.append(o_prev)
    out = inp
    mo = masks.get("output")
    if mo is not None:
        out = out * (mo if mo.dim() == 0 or not step.get("output") else mo)
    h_n = torch.stack(hs)
    if not lstm_like:
        return out, h_n
    return out, (h_n, torch.stack(cs)) + ((torch.stack(os_),) if carry_o else ())
