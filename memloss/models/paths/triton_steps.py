"""Triton kernels for the LSTM and GRU pointwise steps of the fused path (CUDA; CPU under
``TRITON_INTERPRET=1`` for tests).

One kernel per step and direction replaces the ~10 (forward) and ~14 (backward) PyTorch
ops of :mod:`memloss.models.paths.pointwise`; the per-step matrix product stays a cuBLAS call.
Masks are passed as (pointer, batch stride, unit stride): a per-step or per-sequence
``[B, H]`` mask, or an expectation (0-dim, strides 0). Absent masks are compile-time
switches. ``tanh`` is ``1 - 2 / (exp(2x) + 1)`` (the interpreter has no libdevice).

Status: tested against the PyTorch loop under the interpreter only; not yet run or timed
on a GPU (docs/performance.md).
"""
from __future__ import annotations

import os
from typing import Sequence

from torch import Tensor

try:  # triton is optional: CUDA wheels of torch ship it; CPU installs may not
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised where triton is absent
    triton = None
    tl = None

__all__ = ["available", "lstm_forward_step", "lstm_backward_step", "gru_forward_step",
           "gru_backward_step"]

_BLOCK = 256


def available(t: Tensor) -> bool:
    """True when the kernels can run on ``t``: triton importable and a CUDA tensor, or a
    CPU tensor under ``TRITON_INTERPRET=1``."""
    if triton is None:
        return False
    return t.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"


def _mask_args(m: Tensor | None, like: Tensor) -> tuple[Tensor, int, int]:
    if m is None:
        return like, 0, 0
    if m.dim() == 0:
        return m, 0, 0
    if m.dim() != 2:
        raise ValueError(f"triton LSTM step takes [B, H] or 0-dim masks, got shape {tuple(m.shape)}")
    return m, m.stride(0), m.stride(1)


if triton is not None:
    @triton.jit
    def _tanh(x):
        return 1.0 - 2.0 / (tl.exp(2.0 * x) + 1.0)

    @triton.jit
    def _mload(ptr, sb, sh, b, j, msk):
        return tl.load(ptr + b * sb + j * sh, mask=msk, other=0.0)

    @triton.jit
    def _lstm_fwd_kernel(r, s_r, gates, s_g, c_prev, s_cp, c_next, s_cn, tch, s_tc,
                         h_prev, s_hp, h_out, s_ho, oe_prev, s_oep, oe_out, s_oe,
                         mu, mu_b, mu_h, mc, mc_b, mc_h, zc, zc_b, zc_h,
                         zo, zo_b, zo_h, mh, mh_b, mh_h, zh, zh_b, zh_h, B, H,
                         HAS_MU: tl.constexpr, HAS_MC: tl.constexpr, HAS_ZC: tl.constexpr,
                         HAS_ZO: tl.constexpr, FIRST: tl.constexpr, HAS_MH: tl.constexpr,
                         HAS_ZH: tl.constexpr, BLOCK: tl.constexpr):
        idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        msk = idx < B * H
        b = idx // H
        j = idx % H
        i = tl.sigmoid(tl.load(r + b * s_r + j, mask=msk, other=0.0))
        f = tl.sigmoid(tl.load(r + b * s_r + H + j, mask=msk, other=0.0))
        g = _tanh(tl.load(r + b * s_r + 2 * H + j, mask=msk, other=0.0))
        o = tl.sigmoid(tl.load(r + b * s_r + 3 * H + j, mask=msk, other=0.0))
        tl.store(gates + b * s_g + j, i, mask=msk)
        tl.store(gates + b * s_g + H + j, f, mask=msk)
        tl.store(gates + b * s_g + 2 * H + j, g, mask=msk)
        tl.store(gates + b * s_g + 3 * H + j, o, mask=msk)
        gu = g
        if HAS_MU:
            gu = g * _mload(mu, mu_b, mu_h, b, j, msk)
        cp = tl.load(c_prev + b * s_cp + j, mask=msk, other=0.0)
        cn = f * cp + i * gu
        if HAS_MC:
            cn = cn * _mload(mc, mc_b, mc_h, b, j, msk)
        tc = _tanh(cn)
        tl.store(tch + b * s_tc + j, tc, mask=msk)
        c = cn
        if HAS_ZC:
            c = cn + _mload(zc, zc_b, zc_h, b, j, msk) * (cp - cn)
        tl.store(c_next + b * s_cn + j, c, mask=msk)
        oe = o
        if HAS_ZO:
            if not FIRST:
                op = tl.load(oe_prev + b * s_oep + j, mask=msk, other=0.0)
                oe = o + _mload(zo, zo_b, zo_h, b, j, msk) * (op - o)
            tl.store(oe_out + b * s_oe + j, oe, mask=msk)
        hn = oe * tc
        if HAS_MH:
            hn = hn * _mload(mh, mh_b, mh_h, b, j, msk)
        if HAS_ZH:
            hp = tl.load(h_prev + b * s_hp + j, mask=msk, other=0.0)
            hn = hn + _mload(zh, zh_b, zh_h, b, j, msk) * (hp - hn)
        tl.store(h_out + b * s_ho + j, hn, mask=msk)

    @triton.jit
    def _lstm_bwd_kernel(dh_rec, s_dr, dout, s_do, direct, s_di, dc, s_dc, ocarry, s_oc,
                         gates, s_g, c_prev, s_cp, tch, s_tc, oeff, s_oe, dA, s_da,
                         mr, mr_b, mr_h, mu, mu_b, mu_h, mc, mc_b, mc_h, zc, zc_b, zc_h,
                         zo, zo_b, zo_h, mh, mh_b, mh_h, zh, zh_b, zh_h, B, H,
                         HAS_REC: tl.constexpr, HAS_MR: tl.constexpr, HAS_DIRECT: tl.constexpr,
                         HAS_DOUT: tl.constexpr, HAS_MU: tl.constexpr, HAS_MC: tl.constexpr,
                         HAS_ZC: tl.constexpr, HAS_ZO: tl.constexpr, FIRST: tl.constexpr,
                         HAS_MH: tl.constexpr, HAS_ZH: tl.constexpr, BLOCK: tl.constexpr):
        idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        msk = idx < B * H
        b = idx // H
        j = idx % H
        # dL/dh_t = (dA_{t+1} W) m_rec,t+1 + zoneout/direct part + dL/dy_t
        dh = tl.load(dh_rec + b * s_dr + j, mask=msk, other=0.0)
        if HAS_REC:
            if HAS_MR:
                dh = dh * _mload(mr, mr_b, mr_h, b, j, msk)
        if HAS_DIRECT:
            dh = dh + tl.load(direct + b * s_di + j, mask=msk, other=0.0)
        if HAS_DOUT:
            dh = dh + tl.load(dout + b * s_do + j, mask=msk, other=0.0)
        if HAS_ZH:
            dd = dh * _mload(zh, zh_b, zh_h, b, j, msk)
            tl.store(direct + b * s_di + j, dd, mask=msk)
            dh = dh - dd
        if HAS_MH:
            dh = dh * _mload(mh, mh_b, mh_h, b, j, msk)
        d_c = tl.load(dc + b * s_dc + j, mask=msk, other=0.0)
        cdir = d_c * 0.0
        if HAS_ZC:
            cdir = d_c * _mload(zc, zc_b, zc_h, b, j, msk)
            d_c = d_c - cdir
        i = tl.load(gates + b * s_g + j, mask=msk, other=0.0)
        f = tl.load(gates + b * s_g + H + j, mask=msk, other=0.0)
        g = tl.load(gates + b * s_g + 2 * H + j, mask=msk, other=0.0)
        o = tl.load(gates + b * s_g + 3 * H + j, mask=msk, other=0.0)
        tc = tl.load(tch + b * s_tc + j, mask=msk, other=0.0)
        oe = o
        if HAS_ZO:
            oe = tl.load(oeff + b * s_oe + j, mask=msk, other=0.0)
        d_c = d_c + dh * oe * (1.0 - tc * tc)
        d_o = dh * tc
        if HAS_ZO:
            d_o = d_o + tl.load(ocarry + b * s_oc + j, mask=msk, other=0.0)
            if not FIRST:
                carry = d_o * _mload(zo, zo_b, zo_h, b, j, msk)
                tl.store(ocarry + b * s_oc + j, carry, mask=msk)
                d_o = d_o - carry
        if HAS_MC:
            d_c = d_c * _mload(mc, mc_b, mc_h, b, j, msk)
        gu = g
        di = d_c * i
        if HAS_MU:
            m_u = _mload(mu, mu_b, mu_h, b, j, msk)
            gu = g * m_u
            di = di * m_u
        tl.store(dA + b * s_da + j, d_c * gu * i * (1.0 - i), mask=msk)
        cp = tl.load(c_prev + b * s_cp + j, mask=msk, other=0.0)
        tl.store(dA + b * s_da + H + j, d_c * cp * f * (1.0 - f), mask=msk)
        tl.store(dA + b * s_da + 2 * H + j, di * (1.0 - g * g), mask=msk)
        tl.store(dA + b * s_da + 3 * H + j, d_o * o * (1.0 - o), mask=msk)
        tl.store(dc + b * s_dc + j, d_c * f + cdir, mask=msk)


    @triton.jit
    def _gru_fwd_kernel(r, s_r, xw, s_x, act, s_a, hn_out, s_hn, h_prev, s_hp, h_out, s_ho,
                        mu, mu_b, mu_h, mh, mh_b, mh_h, zh, zh_b, zh_h, B, H,
                        HAS_MU: tl.constexpr, HAS_MH: tl.constexpr, HAS_ZH: tl.constexpr,
                        BLOCK: tl.constexpr):
        idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        msk = idx < B * H
        b = idx // H
        j = idx % H
        hr = tl.load(r + b * s_r + j, mask=msk, other=0.0)
        hz = tl.load(r + b * s_r + H + j, mask=msk, other=0.0)
        hn = tl.load(r + b * s_r + 2 * H + j, mask=msk, other=0.0)
        rr = tl.sigmoid(tl.load(xw + b * s_x + j, mask=msk, other=0.0) + hr)
        z = tl.sigmoid(tl.load(xw + b * s_x + H + j, mask=msk, other=0.0) + hz)
        n = _tanh(tl.load(xw + b * s_x + 2 * H + j, mask=msk, other=0.0) + rr * hn)
        tl.store(act + b * s_a + j, rr, mask=msk)
        tl.store(act + b * s_a + H + j, z, mask=msk)
        tl.store(act + b * s_a + 2 * H + j, n, mask=msk)
        tl.store(hn_out + b * s_hn + j, hn, mask=msk)
        nu = n
        if HAS_MU:
            nu = n * _mload(mu, mu_b, mu_h, b, j, msk)
        hp = tl.load(h_prev + b * s_hp + j, mask=msk, other=0.0)
        h = nu + z * (hp - nu)
        if HAS_MH:
            h = h * _mload(mh, mh_b, mh_h, b, j, msk)
        if HAS_ZH:
            h = h + _mload(zh, zh_b, zh_h, b, j, msk) * (hp - h)
        tl.store(h_out + b * s_ho + j, h, mask=msk)

    @triton.jit
    def _gru_bwd_kernel(dh_rec, s_dr, dout, s_do, direct, s_di, act, s_a, hn, s_hn,
                        h_prev, s_hp, dxw, s_dx, dhh, s_dh,
                        mr, mr_b, mr_h, mu, mu_b, mu_h, mh, mh_b, mh_h, zh, zh_b, zh_h, B, H,
                        HAS_REC: tl.constexpr, HAS_MR: tl.constexpr, HAS_DIRECT: tl.constexpr,
                        HAS_DOUT: tl.constexpr, HAS_MU: tl.constexpr, HAS_MH: tl.constexpr,
                        HAS_ZH: tl.constexpr, BLOCK: tl.constexpr):
        idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        msk = idx < B * H
        b = idx // H
        j = idx % H
        dh = tl.load(dh_rec + b * s_dr + j, mask=msk, other=0.0)
        if HAS_REC:
            if HAS_MR:
                dh = dh * _mload(mr, mr_b, mr_h, b, j, msk)
        if HAS_DIRECT:
            dh = dh + tl.load(direct + b * s_di + j, mask=msk, other=0.0)
        if HAS_DOUT:
            dh = dh + tl.load(dout + b * s_do + j, mask=msk, other=0.0)
        dd = dh * 0.0
        if HAS_ZH:
            dd = dh * _mload(zh, zh_b, zh_h, b, j, msk)
            dh = dh - dd
        if HAS_MH:
            dh = dh * _mload(mh, mh_b, mh_h, b, j, msk)
        rr = tl.load(act + b * s_a + j, mask=msk, other=0.0)
        z = tl.load(act + b * s_a + H + j, mask=msk, other=0.0)
        n = tl.load(act + b * s_a + 2 * H + j, mask=msk, other=0.0)
        hp = tl.load(h_prev + b * s_hp + j, mask=msk, other=0.0)
        nu = n
        dn = dh - dh * z
        if HAS_MU:
            m_u = _mload(mu, mu_b, mu_h, b, j, msk)
            nu = n * m_u
            dn = dn * m_u
        daz = dh * (hp - nu) * z * (1.0 - z)
        dan = dn * (1.0 - n * n)
        dar = dan * tl.load(hn + b * s_hn + j, mask=msk, other=0.0) * rr * (1.0 - rr)
        tl.store(direct + b * s_di + j, dd + dh * z, mask=msk)
        tl.store(dxw + b * s_dx + j, dar, mask=msk)
        tl.store(dxw + b * s_dx + H + j, daz, mask=msk)
        tl.store(dxw + b * s_dx + 2 * H + j, dan, mask=msk)
        tl.store(dhh + b * s_dh + j, dar, mask=msk)
        tl.store(dhh + b * s_dh + H + j, daz, mask=msk)
        tl.store(dhh + b * s_dh + 2 * H + j, dan * rr, mask=msk)


def _grid(B: int, H: int) -> tuple[int]:
    return ((B * H + _BLOCK - 1) // _BLOCK,)


def _rm(t: Tensor) -> Tensor:
    """Row-major view of a [B, N] input: the kernels take a row stride and unit column stride
    (an expanded gradient such as that of ``out.sum()`` has stride 0 and is copied)."""
    return t if t.stride(-1) == 1 and t.stride(0) >= t.shape[-1] else t.contiguous()


def lstm_forward_step(r: Tensor, gates_t: Tensor, c_prev: Tensor, c_next: Tensor, tch_t: Tensor,
                      h_prev: Tensor, h_out: Tensor, oe_prev: Tensor | None, oe_out: Tensor | None,
                      masks: Sequence[Tensor | None]) -> None:
    """One forward step; ``masks`` = (update, cell, zoneout_cell, output_gate, hidden,
    zoneout_hidden) for this step, each ``None``, 0-dim or ``[B, H]``."""
    B, H = h_out.shape
    r, c_prev, h_prev = _rm(r), _rm(c_prev), _rm(h_prev)
    mu, mc, zc, zo, mh, zh = (_mask_args(m, c_prev) for m in masks)
    first = oe_prev is None
    oep = c_prev if oe_prev is None else oe_prev
    oeo = c_prev if oe_out is None else oe_out
    _lstm_fwd_kernel[_grid(B, H)](
        r, r.stride(0), gates_t, gates_t.stride(0), c_prev, c_prev.stride(0), c_next,
        c_next.stride(0), tch_t, tch_t.stride(0), h_prev, h_prev.stride(0), h_out,
        h_out.stride(0), oep, oep.stride(0), oeo, oeo.stride(0), *mu, *mc, *zc, *zo, *mh, *zh,
        B, H, HAS_MU=masks[0] is not None, HAS_MC=masks[1] is not None,
        HAS_ZC=masks[2] is not None, HAS_ZO=masks[3] is not None and oe_out is not None,
        FIRST=first, HAS_MH=masks[4] is not None, HAS_ZH=masks[5] is not None, BLOCK=_BLOCK)


def lstm_backward_step(dh_rec: Tensor, m_rec_next: Tensor | None, has_rec: bool,
                       direct: Tensor | None, read_direct: bool, dout_t: Tensor | None, dc: Tensor,
                       ocarry: Tensor | None, gates_t: Tensor, c_prev: Tensor, tch_t: Tensor,
                       oeff_t: Tensor | None, dA_t: Tensor, masks: Sequence[Tensor | None],
                       first: bool) -> None:
    """One backward step. ``dh_rec`` is ``dA_{t+1} W`` (``has_rec``) or the seed dL/dh_T;
    ``direct`` (read when ``read_direct``: from step t+1; written under hidden zoneout: for
    step t-1), ``dc`` and ``ocarry`` are updated in place. ``masks`` = (update, cell, zoneout_cell, output_gate, hidden, zoneout_hidden)."""
    B, H = dc.shape
    if masks[5] is not None and direct is None:
        raise ValueError("hidden zoneout needs a buffer for the direct gradient")
    mr = _mask_args(m_rec_next, dc)
    mu, mc, zc, zo, mh, zh = (_mask_args(m, dc) for m in masks)
    di = dc if direct is None else direct
    do = dc if dout_t is None else _rm(dout_t)
    dh_rec, c_prev = _rm(dh_rec), _rm(c_prev)
    oc = dc if ocarry is None else ocarry
    oe = dc if oeff_t is None else oeff_t
    _lstm_bwd_kernel[_grid(B, H)](
        dh_rec, dh_rec.stride(0), do, do.stride(0), di, di.stride(0), dc, dc.stride(0),
        oc, oc.stride(0), gates_t, gates_t.stride(0), c_prev, c_prev.stride(0), tch_t,
        tch_t.stride(0), oe, oe.stride(0), dA_t, dA_t.stride(0), *mr, *mu, *mc, *zc, *zo,
        *mh, *zh, B, H, HAS_REC=has_rec, HAS_MR=m_rec_next is not None,
        HAS_DIRECT=read_direct and direct is not None, HAS_DOUT=dout_t is not None,
        HAS_MU=masks[0] is not None, HAS_MC=masks[1] is not None, HAS_ZC=masks[2] is not None,
        HAS_ZO=masks[3] is not None and ocarry is not None, FIRST=first,
        HAS_MH=masks[4] is not None, HAS_ZH=masks[5] is not None, BLOCK=_BLOCK)


def gru_forward_step(r: Tensor, xw_t: Tensor, act_t: Tensor, hn_t: Tensor, h_prev: Tensor,
                     h_out: Tensor, masks: Sequence[Tensor | None]) -> None:
    """One GRU forward step; ``r`` = recurrent product incl. ``b_hh`` [B, 3H]; ``masks`` =
    (update, hidden, zoneout_hidden) for this step."""
    B, H = h_out.shape
    r, xw_t, h_prev = _rm(r), _rm(xw_t), _rm(h_prev)
    mu, mh, zh = (_mask_args(m, h_out) for m in masks)
    _gru_fwd_kernel[_grid(B, H)](
        r, r.stride(0), xw_t, xw_t.stride(0), act_t, act_t.stride(0), hn_t, hn_t.stride(0),
        h_prev, h_prev.stride(0), h_out, h_out.stride(0), *mu, *mh, *zh, B, H,
        HAS_MU=masks[0] is not None, HAS_MH=masks[1] is not None, HAS_ZH=masks[2] is not None,
        BLOCK=_BLOCK)


def gru_backward_step(dh_rec: Tensor, m_rec_next: Tensor | None, has_rec: bool, direct: Tensor,
                      read_direct: bool, dout_t: Tensor | None, act_t: Tensor, hn_t: Tensor,
                      h_prev: Tensor, dxw_t: Tensor, dhh_t: Tensor,
                      masks: Sequence[Tensor | None]) -> None:
    """One GRU backward step; ``direct`` (read when ``read_direct``) becomes the part of
    dL/dh_{t-1} that bypasses the recurrent product. ``masks`` = (update, hidden,
    zoneout_hidden)."""
    B, H = direct.shape
    mr = _mask_args(m_rec_next, direct)
    mu, mh, zh = (_mask_args(m, direct) for m in masks)
    do = direct if dout_t is None else _rm(dout_t)
    dh_rec, h_prev = _rm(dh_rec), _rm(h_prev)
    _gru_bwd_kernel[_grid(B, H)](
        dh_rec, dh_rec.stride(0), do, do.stride(0), direct, direct.stride(0), act_t,
        act_t.stride(0), hn_t, hn_t.stride(0), h_prev, h_prev.stride(0), dxw_t, dxw_t.stride(0),
        dhh_t, dhh_t.stride(0), *mr, *mu, *mh, *zh, B, H, HAS_REC=has_rec,
        HAS_MR=m_rec_next is not None, HAS_DIRECT=read_direct, HAS_DOUT=dout_t is not None,
        HAS_MU=masks[0] is not None, HAS_MH=masks[1] is not None, HAS_ZH=masks[2] is not None,
        BLOCK=_BLOCK)
