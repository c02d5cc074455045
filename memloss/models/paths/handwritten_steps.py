"""Time loops of the fused path: per step one matrix product and the pointwise step, in place.

``*_forward`` runs a layer over the sequence and returns the tensors the backward needs;
``*_backward`` walks the steps in reverse, writing the gate pre-activation gradients
``dA [T, B, G*H]`` (one matrix product ``dA_t W_hh`` per step carries the gradient to
``h_{t-1}``) and returns ``dL/dh_0`` (and ``dL/dc_0``). Weight gradients are left to the
caller (single products over ``T x B`` after the loop).

Every buffer is allocated once per sequence; per-step views come from ``unbind`` before the
loop so the loop body is only arithmetic. Zoneout blends ``new + z (prev - new)`` are
``torch.lerp(new, prev, z)``; activation derivatives use the fused ``aten`` backward kernels.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..masks import LayerMasks
from .gemm import Linear

__all__ = ["lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
           "rnn_forward", "rnn_backward", "recurrent_product", "recurrent_grad"]

_SIG_BW = torch.ops.aten.sigmoid_backward.grad_input    # out = g * y * (1 - y)
_TANH_BW = torch.ops.aten.tanh_backward.grad_input      # out = g * (1 - y^2)
_RELU_BW = torch.ops.aten.threshold_backward.grad_input  # out = g where y > 0


def recurrent_product(lin: Linear, bias: Tensor, h: Tensor, m: Tensor | None, per_gate: bool,
                      hbuf: Tensor) -> Tensor:
    """``bias + (h m_rec) W^T`` with ``lin`` holding ``W``; per-gate masks (``[G, B, H]``)
    use one batched product."""
    if per_gate and m is not None:
        w = lin.w
        G, H = w.shape[0] // w.shape[1], w.shape[1]
        prod = torch.bmm(h.unsqueeze(0) * m, w.view(G, H, H).transpose(1, 2))  # [G, B, H]
        return (bias.reshape(-1, G, H) + prod.transpose(0, 1)).reshape(-1, G * H)
    return lin.add(h if m is None else torch.mul(h, m, out=hbuf), bias)


def recurrent_grad(lin_t: Linear, dA: Tensor, m: Tensor | None, per_gate: bool) -> Tensor:
    """``(dA W) m_rec`` with ``lin_t`` holding ``W^T``: the gradient reaching ``h_{t-1}``
    through the recurrent product (a new tensor)."""
    if per_gate and m is not None:
        wt = lin_t.w
        H, G = wt.shape[0], wt.shape[1] // wt.shape[0]
        w = wt.t()
        dg = torch.bmm(dA.view(-1, G, H).transpose(0, 1), w.reshape(G, H, H))  # [G, B, H]
        return (dg * m).sum(dim=0)
    out = lin_t(dA)
    if m is not None:
        out.mul_(m)
    return out


def _seed(d: Tensor | None, like: Tensor) -> Tensor:
    return torch.zeros_like(like) if d is None else d.clone()


def _split(d: Tensor, z: Tensor | None, direct: Tensor) -> Tensor | None:
    """For ``s_t = new + z (s_{t-1} - new)``: ``direct = d z`` (to s_{t-1}), ``d <- d (1 - z)``."""
    if z is None:
        return None
    torch.mul(d, z, out=direct)
    d.sub_(direct)
    return direct


# --- LSTM ------------------------------------------------------------------------------
def lstm_forward(xw: Tensor, w: Tensor, h0: Tensor, c0: Tensor, M: LayerMasks
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
    """Returns (gates i,f,g,o after activation [T,B,4H], h [T,B,H], c [T+1,B,H] with c_0,
    tanh(c^) [T,B,H], effective output gate o~ [T,B,H] or None)."""
    T, B, GH = xw.shape
    H = GH // 4
    gates = torch.empty_like(xw)
    out = xw.new_empty(T, B, H)
    c_all = xw.new_empty(T + 1, B, H)
    c_all[0].copy_(c0)
    tch = xw.new_empty(T, B, H)
    has_zo = M.has("output_gate")
    oeff = xw.new_empty(T, B, H) if has_zo else None
    hm, gu, cb, hb = (xw.new_empty(B, H) for _ in range(4))
    X = xw.unbind(0)
    IF, I, F = gates[..., :2 * H].unbind(0), gates[..., :H].unbind(0), gates[..., H:2 * H].unbind(0)
    Gg, O = gates[..., 2 * H:3 * H].unbind(0), gates[..., 3 * H:].unbind(0)
    C, TC, Hs = c_all.unbind(0), tch.unbind(0), out.unbind(0)
    OE = oeff.unbind(0) if oeff is not None else None
    mr, mu, mc, zc, zo, mh, zh = (M.steps(s, T) for s in (
        "recurrent", "update", "cell", "zoneout_cell", "output_gate", "hidden", "zoneout_hidden"))
    lin, pg = Linear(w, B), M.rec_per_gate
    h = h0
    for t in range(T):
        a_if, a_g, a_o = recurrent_product(lin, X[t], h, mr[t], pg, hm).split((2 * H, H, H), 1)
        torch.sigmoid(a_if, out=IF[t])
        g, o = torch.tanh(a_g, out=Gg[t]), torch.sigmoid(a_o, out=O[t])
        if mu[t] is not None:
            g = torch.mul(g, mu[t], out=gu)
        z, cp = zc[t], C[t]
        cn = C[t + 1] if z is None else cb
        torch.mul(F[t], cp, out=cn)
        cn.addcmul_(I[t], g)
        if mc[t] is not None:
            cn.mul_(mc[t])
        tc = torch.tanh(cn, out=TC[t])
        if z is not None:
            torch.lerp(cn, cp, z, out=C[t + 1])
        if OE is not None:
            if t == 0:
                OE[0].copy_(o)
            else:
                torch.lerp(o, OE[t - 1], zo[t], out=OE[t])
            o = OE[t]
        z = zh[t]
        hn = Hs[t] if z is None else hb
        torch.mul(o, tc, out=hn)
        if mh[t] is not None:
            hn.mul_(mh[t])
        if z is not None:
            torch.lerp(hn, h, z, out=Hs[t])
        h = Hs[t]
    return gates, out, c_all, tch, oeff


def lstm_backward(d_out: Tensor | None, d_hT: Tensor | None, d_cT: Tensor | None, w: Tensor,
                  gates: Tensor, c_all: Tensor, tch: Tensor, oeff: Tensor | None,
                  M: LayerMasks) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (dA [T,B,4H], dL/dh_0, dL/dc_0)."""
    T, B, GH = gates.shape
    H = GH // 4
    dA = torch.empty_like(gates)
    dh, dc = _seed(d_hT, c_all[0]), _seed(d_cT, c_all[0])
    tmp, hdir, cdir, onext = (torch.empty_like(dh) for _ in range(4))
    ocarry = torch.zeros_like(dh) if oeff is not None else None
    DO = d_out.unbind(0) if d_out is not None else None
    IF, I, F = gates[..., :2 * H].unbind(0), gates[..., :H].unbind(0), gates[..., H:2 * H].unbind(0)
    Gg, O = gates[..., 2 * H:3 * H].unbind(0), gates[..., 3 * H:].unbind(0)
    dAt, dIF, dI = dA.unbind(0), dA[..., :2 * H].unbind(0), dA[..., :H].unbind(0)
    lin_t = Linear(w.t(), B)
    dF, dG, dO = dA[..., H:2 * H].unbind(0), dA[..., 2 * H:3 * H].unbind(0), dA[..., 3 * H:].unbind(0)
    C, TC = c_all.unbind(0), tch.unbind(0)
    OE = oeff.unbind(0) if oeff is not None else None
    mr, mu, mc, zc, zo, mh, zh = (M.steps(s, T) for s in (
        "recurrent", "update", "cell", "zoneout_cell", "output_gate", "hidden", "zoneout_hidden"))
    pg = M.rec_per_gate
    for t in range(T - 1, -1, -1):
        if DO is not None:
            dh.add_(DO[t])
        direct = _split(dh, zh[t], hdir)
        if mh[t] is not None:
            dh.mul_(mh[t])  # dL/dh^ before the hidden mask
        c_direct = _split(dc, zc[t], cdir)
        tc, o = TC[t], O[t]
        torch.mul(dh, o if OE is None else OE[t], out=tmp)
        _TANH_BW(tmp, tc, grad_input=tmp)
        dc.add_(tmp)  # dL/dc^
        if ocarry is not None:
            ocarry.addcmul_(dh, tc)  # dL/do~_t
            if t > 0:
                torch.mul(ocarry, zo[t], out=onext)  # to o~_{t-1}
                ocarry.sub_(onext)
            _SIG_BW(ocarry, o, grad_input=dO[t])
            ocarry, onext = onext, ocarry
        else:
            torch.mul(dh, tc, out=dO[t])
            _SIG_BW(dO[t], o, grad_input=dO[t])
        if mc[t] is not None:
            dc.mul_(mc[t])  # dL/d(f c + i g~)
        g, u = Gg[t], mu[t]
        torch.mul(dc, g, out=dI[t])
        if u is not None:
            dI[t].mul_(u)
        torch.mul(dc, C[t], out=dF[t])
        _SIG_BW(dIF[t], IF[t], grad_input=dIF[t])
        torch.mul(dc, I[t], out=dG[t])
        if u is not None:
            dG[t].mul_(u)
        _TANH_BW(dG[t], g, grad_input=dG[t])
        dc.mul_(F[t])
        if c_direct is not None:
            dc.add_(c_direct)
        dh = recurrent_grad(lin_t, dAt[t], mr[t], pg)
        if direct is not None:
            dh.add_(direct)
    return dA, dh, dc


# --- GRU (torch/cuDNN reset-after form) ------------------------------------------------
def gru_forward(xw: Tensor, w: Tensor, b_hh: Tensor | None, h0: Tensor, M: LayerMasks
                ) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (the n block of the recurrent product hn [T,B,H] incl. b_hh, activations
    r,z,n [T,B,3H] with n before the update mask, h [T,B,H])."""
    T, B, GH = xw.shape
    H = GH // 3
    act = torch.empty_like(xw)
    hn_all, out = xw.new_empty(T, B, H), xw.new_empty(T, B, H)
    hm, nub, hb = (xw.new_empty(B, H) for _ in range(3))
    bias = b_hh if b_hh is not None else xw.new_zeros(GH)
    XRZ, RZ = xw[..., :2 * H].unbind(0), act[..., :2 * H].unbind(0)
    R, Z, N = act[..., :H].unbind(0), act[..., H:2 * H].unbind(0), act[..., 2 * H:].unbind(0)
    XN, HN, Hs = xw[..., 2 * H:].unbind(0), hn_all.unbind(0), out.unbind(0)
    mr, mu, mh, zh = (M.steps(s, T) for s in ("recurrent", "update", "hidden", "zoneout_hidden"))
    lin, pg = Linear(w, B), M.rec_per_gate
    h = h0
    for t in range(T):
        h_rz, h_n = recurrent_product(lin, bias, h, mr[t], pg, hm).split((2 * H, H), 1)
        torch.add(XRZ[t], h_rz, out=RZ[t]).sigmoid_()
        HN[t].copy_(h_n)
        n = torch.mul(R[t], h_n, out=N[t])
        n.add_(XN[t]).tanh_()
        if mu[t] is not None:
            n = torch.mul(n, mu[t], out=nub)
        z = zh[t]
        hn = Hs[t] if z is None else hb
        torch.lerp(n, h, Z[t], out=hn)  # (1 - z) n~ + z h_{t-1}
        if mh[t] is not None:
            hn.mul_(mh[t])
        if z is not None:
            torch.lerp(hn, h, z, out=Hs[t])
        h = Hs[t]
    return hn_all, act, out


def gru_backward(d_out: Tensor | None, d_hT: Tensor | None, w: Tensor, h0: Tensor,
                 hn_all: Tensor, act: Tensor, out: Tensor, M: LayerMasks
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (dxw = (da_r, da_z, da_n), dhh = (da_r, da_z, da_n r), dL/dh_0)."""
    T, B, GH = act.shape
    H = GH // 3
    dxw, dhh = torch.empty_like(act), torch.empty_like(act)
    dh = _seed(d_hT, h0)
    tmp, nub, hdir = (torch.empty_like(dh) for _ in range(3))
    DO = d_out.unbind(0) if d_out is not None else None
    R, Z, N = act[..., :H].unbind(0), act[..., H:2 * H].unbind(0), act[..., 2 * H:].unbind(0)
    HN, Hs = hn_all.unbind(0), out.unbind(0)
    dR, dZ, dN = dxw[..., :H].unbind(0), dxw[..., H:2 * H].unbind(0), dxw[..., 2 * H:].unbind(0)
    dRZ, dHRZ, dHN, dHH = (dxw[..., :2 * H].unbind(0), dhh[..., :2 * H].unbind(0),
                           dhh[..., 2 * H:].unbind(0), dhh.unbind(0))
    mr, mu, mh, zh = (M.steps(s, T) for s in ("recurrent", "update", "hidden", "zoneout_hidden"))
    lin_t, pg = Linear(w.t(), B), M.rec_per_gate
    for t in range(T - 1, -1, -1):
        if DO is not None:
            dh.add_(DO[t])
        h_prev = h0 if t == 0 else Hs[t - 1]
        direct = _split(dh, zh[t], hdir)
        if mh[t] is not None:
            dh.mul_(mh[t])
        n, u, z = N[t], mu[t], Z[t]
        nu = n if u is None else torch.mul(n, u, out=nub)
        torch.sub(h_prev, nu, out=dZ[t])
        dZ[t].mul_(dh)
        _SIG_BW(dZ[t], z, grad_input=dZ[t])
        torch.mul(dh, z, out=tmp)
        if direct is None:
            direct = hdir.copy_(tmp)
        else:
            direct.add_(tmp)
        dn = torch.sub(dh, tmp, out=dN[t])
        if u is not None:
            dn.mul_(u)
        _TANH_BW(dn, n, grad_input=dn)
        torch.mul(dn, R[t], out=dHN[t])
        torch.mul(dn, HN[t], out=dR[t])
        _SIG_BW(dR[t], R[t], grad_input=dR[t])
        dHRZ[t].copy_(dRZ[t])
        dh = recurrent_grad(lin_t, dHH[t], mr[t], pg)
        dh.add_(direct)
    return dxw, dhh, dh


# --- vanilla RNN -----------------------------------------------------------------------
def rnn_forward(xw: Tensor, w: Tensor, h0: Tensor, M: LayerMasks, relu: bool
                ) -> tuple[Tensor, Tensor]:
    """Returns (activations before the hidden mask [T,B,H], h [T,B,H])."""
    T, B, H = xw.shape
    pre = torch.empty_like(xw)
    out = xw.new_empty(T, B, H)
    hm, hb = xw.new_empty(B, H), xw.new_empty(B, H)
    X, P, Hs = xw.unbind(0), pre.unbind(0), out.unbind(0)
    mr, mh, zh = (M.steps(s, T) for s in ("recurrent", "hidden", "zoneout_hidden"))
    lin = Linear(w, B)
    h = h0
    for t in range(T):
        r = recurrent_product(lin, X[t], h, mr[t], False, hm)
        a = torch.clamp_min(r, 0, out=P[t]) if relu else torch.tanh(r, out=P[t])
        z = zh[t]
        hn = Hs[t] if z is None else hb
        if mh[t] is not None:
            torch.mul(a, mh[t], out=hn)
        elif z is None:
            hn.copy_(a)
        else:
            hn = a
        if z is not None:
            torch.lerp(hn, h, z, out=Hs[t])
        h = Hs[t]
    return pre, out


def rnn_backward(d_out: Tensor | None, d_hT: Tensor | None, w: Tensor, h0: Tensor, pre: Tensor,
                 M: LayerMasks, relu: bool) -> tuple[Tensor, Tensor]:
    """Returns (dA [T,B,H], dL/dh_0)."""
    T = pre.shape[0]
    dA = torch.empty_like(pre)
    dh = _seed(d_hT, h0)
    hdir = torch.empty_like(dh)
    DO = d_out.unbind(0) if d_out is not None else None
    P, dAt = pre.unbind(0), dA.unbind(0)
    mr, mh, zh = (M.steps(s, T) for s in ("recurrent", "hidden", "zoneout_hidden"))
    back = _RELU_BW if relu else _TANH_BW
    lin_t = Linear(w.t(), pre.shape[1])
    for t in range(T - 1, -1, -1):
        if DO is not None:
            dh.add_(DO[t])
        direct = _split(dh, zh[t], hdir)
        if mh[t] is not None:
            dh.mul_(mh[t])
        if relu:
            back(dh, P[t], 0, grad_input=dAt[t])
        else:
            back(dh, P[t], grad_input=dAt[t])
        dh = recurrent_grad(lin_t, dAt[t], mr[t], False)
        if direct is not None:
            dh.add_(direct)
    return dA, dh
