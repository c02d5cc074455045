"""The fused path: one ``torch.autograd.Function`` per layer over the whole sequence.

Same contract and same masks as :func:`memloss.models.paths.reference_layer`, so for the same mask
tensors both paths give the same outputs, states and gradients (tests check this in
float64 for every cell x scheme). What makes it fast:

* the input projection of all ``T`` steps is one matrix product before the loop, and its
  backward two products over ``T x B`` (input and weight gradients);
* the forward loop does one product per step and then the pointwise step (activations,
  every mask, zoneout blending) into preallocated buffers; it saves the gates;
* the hand-written backward does, per step, one pointwise step and one product
  (``dA_t W_hh``); the recurrent-weight gradient is one product over ``T x B`` after the
  loop, and ``dA`` itself is the gradient of the input projection;
* on CPU in float32 the products use oneDNN with weights packed once per sequence, the
  library ``torch.nn.LSTM`` uses there (:mod:`memloss.models.paths.gemm`).

The loops are in :mod:`memloss.models.paths.pointwise` (plain PyTorch, in place; CPU and CUDA).
Masks are treated as constants (no gradient flows into them); double backward and
``torch.func`` transforms are not supported.

Equations (``m_*`` dropout masks, ``z_*`` zoneout indicators or their expectations)::

    LSTM  a = xw_t + (h_{t-1} m_rec) W^T;  i,f,o = sigma(.), g = tanh(.)
          c^ = (f c_{t-1} + i g m_upd) m_cell;  c_t = c^ + z_c (c_{t-1} - c^)
          o~ = o + z_o (o~_{t-1} - o)   (o~_0 = o_0);  h^ = o~ tanh(c^) m_hid
          h_t = h^ + z_h (h_{t-1} - h^)
    GRU   (r, z) = sigma(xw_t + hh);  hh = (h_{t-1} m_rec) W^T + b_hh
          n = tanh(xw_n + r hh_n) m_upd;  h^ = (n + z (h_{t-1} - n)) m_hid;  zoneout as above
    RNN   h^ = act(xw_t + (h_{t-1} m_rec) W^T) m_hid;  zoneout as above
"""
from __future__ import annotations


import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from ..cells import CellSpec
from . import handwritten_steps as pw
from .gemm import Linear
from ..masks import LayerMasks
from dataclasses import dataclass

from .common import input_pre


@dataclass(frozen=True)
class LayerWeights:
    w_ih: Tensor
    w_hh: Tensor
    b_ih: Tensor | None
    b_hh: Tensor | None

__all__ = ["fused_supported", "fused_layer"]

_CELLS = ("lstm", "gru", "rnn")
_G = {"lstm": 4, "gru": 3, "rnn": 1}


def fused_supported(cell: CellSpec, sites: dict[str, object]) -> bool:
    """True when the fused path implements this cell (it implements every site the cell
    offers)."""
    return cell.name in _CELLS and set(sites) <= set(cell.sites)


def _outer_sum(dy: Tensor, x: Tensor) -> Tensor:
    """``dy^T x`` ([N, K] from [M, N] and [M, K]), contiguous. Computed as ``(x^T dy)^T``
    plus a copy: MKL runs that orientation up to 1.4x faster on the CPUs we measured, and a
    contiguous gradient keeps AccumulateGrad from a strided (slow) addition."""
    return x.t().mm(dy).t().contiguous()


def _weight_grad(dA: Tensor, h0: Tensor, out: Tensor, M: LayerMasks, G: int) -> Tensor:
    """``dW_hh = sum_t dA_t^T (h_{t-1} m_rec)`` as one product over ``T x B``."""
    T, B, GH = dA.shape
    H = GH // G
    h_prev = torch.cat([h0.unsqueeze(0), out[:-1]], dim=0)  # [T, B, H]
    mr = M.recurrent_all()
    if M.rec_per_gate and mr is not None:
        hg = h_prev.unsqueeze(1) * mr  # [T, G, B, H]
        dAg = dA.view(T, B, G, H).permute(2, 3, 0, 1).reshape(G, H, T * B)
        return torch.bmm(dAg, hg.permute(1, 0, 2, 3).reshape(G, T * B, H)).reshape(GH, H)
    if mr is not None:
        h_prev = h_prev * mr
    return _outer_sum(dA.reshape(T * B, GH), h_prev.reshape(T * B, H))


class _InputProjection(torch.autograd.Function):
    """``x W^T + b`` for all steps in one product; the backward is two products over T x B."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, w)
        x2 = x.reshape(-1, x.shape[-1])
        return Linear(w, x2.shape[0])(x2, b).view(*x.shape[:-1], w.shape[0])

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor | None, ...]:
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        dy2 = dy.reshape(-1, dy.shape[-1])
        dx = Linear(w.t(), dy2.shape[0])(dy2).view(x.shape) if need[0] else None
        dw = _outer_sum(dy2, x.reshape(-1, x.shape[-1])) if need[1] else None
        db = dy2.sum(0) if need[2] else None
        return dx, dw, db


def _project(x: Tensor, w: LayerWeights, masks: LayerMasks, cell: CellSpec) -> Tensor:
    """The input projection of all steps: masked input times W_ih (per-gate input masks go
    through the reference einsum); LSTM/RNN fold b_hh into the bias, a GRU keeps it apart."""
    m = masks.values.get("input")
    fold = cell.name != "gru"
    if m is not None and "input" in masks.per_gate and m.dim() > 0:
        return input_pre(cell, x, {"weight_ih": w.w_ih, "bias_ih": w.b_ih, "bias_hh": w.b_hh},
                         masks)
    bias = w.b_ih
    if fold and w.b_hh is not None:
        bias = w.b_hh if bias is None else bias + w.b_hh
    return _InputProjection.apply(x if m is None else x * m, w.w_ih, bias)


class _FusedLSTM(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, xw: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor,
                masks: LayerMasks) -> tuple[Tensor, Tensor, Tensor]:
        gates, out, c_all, tch, oeff = pw.lstm_forward(xw, w_hh, h0, c0, masks)
        ctx.save_for_backward(w_hh, h0, gates, out, c_all, tch)
        ctx.oeff, ctx.masks = oeff, masks
        return out, out[-1].clone(), c_all[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_out: Tensor | None, d_hT: Tensor | None,
                 d_cT: Tensor | None) -> tuple[Tensor | None, ...]:
        w_hh, h0, gates, out, c_all, tch = ctx.saved_tensors
        dA, dh0, dc0 = pw.lstm_backward(d_out, d_hT, d_cT, w_hh, gates, c_all, tch, ctx.oeff,
                                        ctx.masks)
        need = ctx.needs_input_grad
        dW = _weight_grad(dA, h0, out, ctx.masks, 4) if need[1] else None
        return (dA if need[0] else None, dW, dh0 if need[2] else None,
                dc0 if need[3] else None, None)


class _FusedGRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, xw: Tensor, w_hh: Tensor, b_hh: Tensor | None, h0: Tensor,
                masks: LayerMasks) -> tuple[Tensor, Tensor]:
        hn, act, out = pw.gru_forward(xw, w_hh, b_hh, h0, masks)
        ctx.save_for_backward(w_hh, h0, hn, act, out)
        ctx.masks, ctx.has_bias = masks, b_hh is not None
        return out, out[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_out: Tensor | None, d_hT: Tensor | None
                 ) -> tuple[Tensor | None, ...]:
        w_hh, h0, hn, act, out = ctx.saved_tensors
        dxw, dhh, dh0 = pw.gru_backward(d_out, d_hT, w_hh, h0, hn, act, out, ctx.masks)
        need = ctx.needs_input_grad
        dW = _weight_grad(dhh, h0, out, ctx.masks, 3) if need[1] else None
        db = dhh.sum(dim=(0, 1)) if need[2] and ctx.has_bias else None
        return dxw if need[0] else None, dW, db, dh0 if need[3] else None, None


class _FusedRNN(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, xw: Tensor, w_hh: Tensor, h0: Tensor, masks: LayerMasks,
                relu: bool) -> tuple[Tensor, Tensor]:
        pre, out = pw.rnn_forward(xw, w_hh, h0, masks, relu)
        ctx.save_for_backward(w_hh, h0, pre, out)
        ctx.masks, ctx.relu = masks, relu
        return out, out[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_out: Tensor | None, d_hT: Tensor | None
                 ) -> tuple[Tensor | None, ...]:
        w_hh, h0, pre, out = ctx.saved_tensors
        dA, dh0 = pw.rnn_backward(d_out, d_hT, w_hh, h0, pre, ctx.masks, ctx.relu)
        need = ctx.needs_input_grad
        dW = _weight_grad(dA, h0, out, ctx.masks, 1) if need[1] else None
        return dA if need[0] else None, dW, dh0 if need[2] else None, None, None


def fused_layer(cell: CellSpec, x: Tensor, h0: Tensor, c0: Tensor | None, w: LayerWeights,
                masks: LayerMasks, nonlinearity: str = "tanh"
                ) -> tuple[Tensor, Tensor, Tensor | None]:
    """Same contract as :func:`memloss.models.paths.reference_layer`, as one fused Function."""
    if cell.name not in _CELLS:
        raise ValueError(f"the fused path has no {cell.name!r} cell; use path='reference'")
    if cell.name == "rnn" and "recurrent" in masks.per_gate:
        raise ValueError("a vanilla RNN has one gate block; per-gate recurrent masks do not apply")
    xw = _project(x, w, masks, cell)
    w_hh = w.w_hh
    if "weight" in masks.values:
        w_hh = w_hh * masks.values["weight"]
    M = masks.gate_major()
    if cell.name == "lstm":
        if c0 is None:
            raise ValueError("an LSTM layer needs an initial cell state c0")
        return _FusedLSTM.apply(xw, w_hh, h0, c0, M)
    if cell.name == "gru":
        out, h = _FusedGRU.apply(xw, w_hh, w.b_hh, h0, M)
        return out, h, None
    out, h = _FusedRNN.apply(xw, w_hh, h0, M, nonlinearity == "relu")
    return out, h, None


def handwritten_layer(cell, x, state, params, masks, nonlinearity="tanh"):
    """The hand-written fused path under the layer contract of memloss.models.paths.common
    (kept only to benchmark it against the derived one; LSTM/GRU/RNN)."""
    w = LayerWeights(params["weight_ih"], params["weight_hh"], params.get("bias_ih"),
                     params.get("bias_hh"))
    out, h, c = fused_layer(cell, x, state[0], state[1] if cell.has_cell else None, w, masks,
                            nonlinearity)
    extra = (torch.zeros_like(h),) * (len(state) - (2 if cell.has_cell else 1))
    return out, ((h, c) if cell.has_cell else (h,)) + extra
