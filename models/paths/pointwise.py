"""Per-step pointwise kernels of the fused path, in place on preallocated buffers.

Each ``*_forward_step`` turns the gate pre-activations of one step (already holding
``xw_t + h~ W^T``) into the new state with every mask and zoneout blend; each
``*_backward_step`` turns ``dL/dh_t`` (and ``dL/dc_t``) into the gate pre-activation
gradients ``dA_t`` and the part of ``dL/dh_{t-1}`` that bypasses the recurrent product
(zoneout and the GRU's ``z`` path); the caller adds ``(dA_t W) m_rec``.

Zoneout blends ``new + z (prev - new)`` are ``torch.lerp(new, prev, z)``. Activation
derivatives use the fused ``aten`` backward kernels (one pass each). Workspaces hold the
scratch tensors, allocated once per sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

__all__ = [
    "LSTMWorkspace", "LSTMBackWorkspace", "GRUWorkspace", "GRUBackWorkspace",
    "RNNWorkspace", "RNNBackWorkspace",
    "lstm_forward_step", "lstm_backward_step", "gru_forward_step", "gru_backward_step",
    "rnn_forward_step", "rnn_backward_step",
]

_aten = torch.ops.aten


class StepMasks(Protocol):
    def at(self, site: str, t: int) -> Tensor | None: ...


def _sigmoid_back(grad: Tensor, y: Tensor, out: Tensor) -> None:
    """``out = grad * y * (1 - y)`` for ``y = sigmoid(a)``."""
    _aten.sigmoid_backward.grad_input(grad, y, grad_input=out)


def _tanh_back(grad: Tensor, y: Tensor, out: Tensor) -> None:
    """``out = grad * (1 - y^2)`` for ``y = tanh(a)``."""
    _aten.tanh_backward.grad_input(grad, y, grad_input=out)


def _relu_back(grad: Tensor, y: Tensor, out: Tensor) -> None:
    """``out = grad`` where ``y = relu(a) > 0``, else 0."""
    _aten.threshold_backward.grad_input(grad, y, 0, grad_input=out)


def _split_zoneout(d: Tensor, z: Tensor | None, direct: Tensor) -> Tensor | None:
    """For ``s_t = new + z (s_{t-1} - new)``: ``direct = d z`` (to s_{t-1}), ``d <- d (1 - z)``."""
    if z is None:
        return None
    torch.mul(d, z, out=direct)
    d.sub_(direct)
    return direct


# --- LSTM ------------------------------------------------------------------------------
@dataclass
class LSTMWorkspace:
    hm: Tensor  # h_{t-1} m_rec
    gu: Tensor  # g m_upd
    c: Tensor   # c^ before zoneout
    h: Tensor   # h^ before zoneout

    @classmethod
    def make(cls, like: Tensor, B: int, H: int) -> "LSTMWorkspace":
        return cls(*(like.new_empty(B, H) for _ in range(4)))


def lstm_forward_step(t: int, gt: Tensor, h_prev: Tensor, c_prev: Tensor, c_next: Tensor,
                      tch: Tensor, out: Tensor, oeff: Tensor | None, oeff_prev: Tensor | None,
                      masks: StepMasks, ws: LSTMWorkspace) -> None:
    """``gt`` [B, 4H] pre-activations -> activated gates (in place), ``c_next``, ``tch`` =
    tanh(c^), ``out`` = h_t and (output-gate zoneout) ``oeff`` = o~_t."""
    H = h_prev.shape[-1]
    i, f, g, o = gt[:, :H], gt[:, H:2 * H], gt[:, 2 * H:3 * H], gt[:, 3 * H:]
    gt[:, :2 * H].sigmoid_()
    g.tanh_()
    o.sigmoid_()
    mu = masks.at("update", t)
    gu = g if mu is None else torch.mul(g, mu, out=ws.gu)
    zc = masks.at("zoneout_cell", t)
    cn = c_next if zc is None else ws.c
    torch.mul(f, c_prev, out=cn)
    cn.addcmul_(i, gu)
    mc = masks.at("cell", t)
    if mc is not None:
        cn.mul_(mc)
    torch.tanh(cn, out=tch)
    if zc is not None:
        torch.lerp(cn, c_prev, zc, out=c_next)
    zo = masks.at("output_gate", t)
    if zo is not None and oeff is not None:
        if oeff_prev is None:
            oeff.copy_(o)
        else:
            torch.lerp(o, oeff_prev, zo, out=oeff)
        o = oeff
    zh = masks.at("zoneout_hidden", t)
    hn = out if zh is None else ws.h
    torch.mul(o, tch, out=hn)
    mh = masks.at("hidden", t)
    if mh is not None:
        hn.mul_(mh)
    if zh is not None:
        torch.lerp(hn, h_prev, zh, out=out)


@dataclass
class LSTMBackWorkspace:
    tmp: Tensor
    dh_direct: Tensor
    dc_direct: Tensor
    do_carry: Tensor | None  # d o~_t flowing back through output-gate zoneout
    do_next: Tensor | None

    @classmethod
    def make(cls, like: Tensor, output_gate: bool) -> "LSTMBackWorkspace":
        z = (torch.zeros_like(like), torch.empty_like(like)) if output_gate else (None, None)
        return cls(torch.empty_like(like), torch.empty_like(like), torch.empty_like(like), *z)


def lstm_backward_step(t: int, dh: Tensor, dc: Tensor, gt: Tensor, c_prev: Tensor, tch: Tensor,
                       oeff: Tensor | None, dA: Tensor, masks: StepMasks,
                       ws: LSTMBackWorkspace) -> Tensor | None:
    """``dh`` = dL/dh_t, ``dc`` = dL/dc_t in; writes ``dA`` [B, 4H]; ``dc`` becomes
    dL/dc_{t-1}; returns the zoneout part of dL/dh_{t-1} (or None). ``dh`` is consumed."""
    H = dh.shape[-1]
    i, f, g, o = gt[:, :H], gt[:, H:2 * H], gt[:, 2 * H:3 * H], gt[:, 3 * H:]
    di, df, dg, do = dA[:, :H], dA[:, H:2 * H], dA[:, 2 * H:3 * H], dA[:, 3 * H:]
    direct = _split_zoneout(dh, masks.at("zoneout_hidden", t), ws.dh_direct)
    mh = masks.at("hidden", t)
    if mh is not None:
        dh.mul_(mh)  # dL/dh^ (before the hidden mask)
    zc = masks.at("zoneout_cell", t)
    c_direct = _split_zoneout(dc, zc, ws.dc_direct)
    zo = masks.at("output_gate", t)
    o_eff = o if zo is None or oeff is None else oeff
    torch.mul(dh, o_eff, out=ws.tmp)
    _tanh_back(ws.tmp, tch, ws.tmp)
    dc.add_(ws.tmp)  # dL/dc^
    if ws.do_carry is not None and ws.do_next is not None and zo is not None:
        doe = ws.do_carry
        doe.addcmul_(dh, tch)  # dL/do~_t
        if t > 0:
            torch.mul(doe, zo, out=ws.do_next)  # to o~_{t-1}
            doe.sub_(ws.do_next)
        _sigmoid_back(doe, o, do)
        if t > 0:
            ws.do_carry, ws.do_next = ws.do_next, ws.do_carry
    else:
        torch.mul(dh, tch, out=do)
        _sigmoid_back(do, o, do)
    mc = masks.at("cell", t)
    if mc is not None:
        dc.mul_(mc)  # dL/d(f c + i g~)
    mu = masks.at("update", t)
    torch.mul(dc, g, out=di)
    if mu is not None:
        di.mul_(mu)
    _sigmoid_back(di, i, di)
    torch.mul(dc, c_prev, out=df)
    _sigmoid_back(df, f, df)
    torch.mul(dc, i, out=dg)
    if mu is not None:
        dg.mul_(mu)
    _tanh_back(dg, g, dg)
    dc.mul_(f)
    if c_direct is not None:
        dc.add_(c_direct)
    return direct


# --- GRU -------------------------------------------------------------------------------
@dataclass
class GRUWorkspace:
    hm: Tensor
    nu: Tensor
    h: Tensor

    @classmethod
    def make(cls, like: Tensor, B: int, H: int) -> "GRUWorkspace":
        return cls(*(like.new_empty(B, H) for _ in range(3)))


def gru_forward_step(t: int, xw: Tensor, hh: Tensor, act: Tensor, h_prev: Tensor, out: Tensor,
                     masks: StepMasks, ws: GRUWorkspace) -> None:
    """``act`` <- (r, z, n); ``out`` <- h_t (torch/cuDNN reset-after GRU)."""
    H = h_prev.shape[-1]
    z, n = act[:, H:2 * H], act[:, 2 * H:]
    torch.add(xw[:, :2 * H], hh[:, :2 * H], out=act[:, :2 * H]).sigmoid_()
    torch.mul(act[:, :H], hh[:, 2 * H:], out=n)
    n.add_(xw[:, 2 * H:]).tanh_()
    mu = masks.at("update", t)
    nu = n if mu is None else torch.mul(n, mu, out=ws.nu)
    zh = masks.at("zoneout_hidden", t)
    hn = out if zh is None else ws.h
    torch.lerp(nu, h_prev, z, out=hn)  # (1 - z) n~ + z h_{t-1}
    mh = masks.at("hidden", t)
    if mh is not None:
        hn.mul_(mh)
    if zh is not None:
        torch.lerp(hn, h_prev, zh, out=out)


@dataclass
class GRUBackWorkspace:
    tmp: Tensor
    nu: Tensor
    dh_direct: Tensor

    @classmethod
    def make(cls, like: Tensor) -> "GRUBackWorkspace":
        return cls(*(torch.empty_like(like) for _ in range(3)))


def gru_backward_step(t: int, dh: Tensor, h_prev: Tensor, hh: Tensor, act: Tensor, dxw: Tensor,
                      dhh: Tensor, masks: StepMasks, ws: GRUBackWorkspace) -> Tensor:
    """Writes ``dxw`` = (da_r, da_z, da_n) and ``dhh`` = (da_r, da_z, da_n r); returns the
    part of dL/dh_{t-1} that bypasses the recurrent product. ``dh`` is consumed."""
    H = dh.shape[-1]
    r, z, n = act[:, :H], act[:, H:2 * H], act[:, 2 * H:]
    dr, dz, dn = dxw[:, :H], dxw[:, H:2 * H], dxw[:, 2 * H:]
    direct = _split_zoneout(dh, masks.at("zoneout_hidden", t), ws.dh_direct)
    mh = masks.at("hidden", t)
    if mh is not None:
        dh.mul_(mh)
    mu = masks.at("update", t)
    nu = n if mu is None else torch.mul(n, mu, out=ws.nu)
    torch.sub(h_prev, nu, out=dz)
    dz.mul_(dh)
    _sigmoid_back(dz, z, dz)
    torch.mul(dh, z, out=ws.tmp)
    if direct is None:
        direct = ws.dh_direct.copy_(ws.tmp)
    else:
        direct.add_(ws.tmp)
    torch.sub(dh, ws.tmp, out=dn)
    if mu is not None:
        dn.mul_(mu)
    _tanh_back(dn, n, dn)
    torch.mul(dn, r, out=dhh[:, 2 * H:])
    torch.mul(dn, hh[:, 2 * H:], out=dr)
    _sigmoid_back(dr, r, dr)
    dhh[:, :2 * H].copy_(dxw[:, :2 * H])
    return direct


# --- vanilla RNN -----------------------------------------------------------------------
@dataclass
class RNNWorkspace:
    hm: Tensor
    h: Tensor

    @classmethod
    def make(cls, like: Tensor, B: int, H: int) -> "RNNWorkspace":
        return cls(like.new_empty(B, H), like.new_empty(B, H))


def rnn_forward_step(t: int, pre: Tensor, h_prev: Tensor, out: Tensor, masks: StepMasks,
                     ws: RNNWorkspace, relu: bool) -> None:
    """``pre`` <- act(pre) in place; ``out`` <- h_t."""
    if relu:
        pre.relu_()
    else:
        pre.tanh_()
    mh, zh = masks.at("hidden", t), masks.at("zoneout_hidden", t)
    hn = out if zh is None else ws.h
    if mh is not None:
        torch.mul(pre, mh, out=hn)
    elif zh is None:
        out.copy_(pre)
    else:
        hn = pre
    if zh is not None:
        torch.lerp(hn, h_prev, zh, out=out)


@dataclass
class RNNBackWorkspace:
    dh_direct: Tensor

    @classmethod
    def make(cls, like: Tensor) -> "RNNBackWorkspace":
        return cls(torch.empty_like(like))


def rnn_backward_step(t: int, dh: Tensor, act: Tensor, dA: Tensor, masks: StepMasks,
                      ws: RNNBackWorkspace, relu: bool) -> Tensor | None:
    """Writes ``dA`` (pre-activation gradient); returns the zoneout part of dL/dh_{t-1}."""
    direct = _split_zoneout(dh, masks.at("zoneout_hidden", t), ws.dh_direct)
    mh = masks.at("hidden", t)
    if mh is not None:
        dh.mul_(mh)
    (_relu_back if relu else _tanh_back)(dh, act, dA)
    return direct
