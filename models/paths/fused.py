"""The fused path: one ``torch.autograd.Function`` per layer over the whole sequence.

Same contract and same masks as :func:`models.paths.reference_layer`, so for the same mask
tensors both paths give the same outputs, states and gradients (tests check this in
float64). What makes it fast:

* the input projection of all ``T`` steps is one matrix product before the loop (outside
  the Function, so autograd turns its gradient into single products over ``T x B``);
* the forward loop does one ``addmm`` per step into a preallocated gate buffer, then the
  pointwise step (activations, every mask, zoneout blending) in place on preallocated
  buffers: no per-step allocation beyond the saved activations;
* the hand-written backward does, per step, one fused pointwise step and one matrix
  product (``dA_t W_hh``); the recurrent-weight gradient is one product over ``T x B``
  after the loop, and the gradient of the gate pre-activations *is* the input-projection
  gradient, handed back to autograd as one ``[T, B, G*H]`` tensor.

The pointwise kernels are in :mod:`models.paths.pointwise` (plain PyTorch, in place; CPU
and CUDA). Masks are treated as constants (no gradient flows into them).

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
from . import pointwise as pw
from .reference import LayerMasks, LayerWeights, input_projection

__all__ = ["FUSED_SITES", "fused_supported", "fused_layer"]

#: sites the fused path implements (input/weight act outside the Function)
FUSED_SITES = frozenset({"input", "recurrent", "update", "cell", "hidden", "zoneout_cell",
                         "zoneout_hidden", "output_gate", "weight", "output", "embedding"})
_CELLS = ("lstm", "gru", "rnn")


def fused_supported(cell: CellSpec, sites: dict[str, object]) -> bool:
    """True when the fused path implements this cell and every site of the scheme."""
    return cell.name in _CELLS and set(sites) <= FUSED_SITES


class _Masks:
    """Per-step access to one layer's masks; per-gate recurrent masks laid out ``[.., G, B, H]``."""

    def __init__(self, lm: LayerMasks) -> None:
        self.values = {k: v for k, v in lm.values.items() if k not in ("input", "weight")}
        self.step = lm.step
        self.rec_per_gate = "recurrent" in lm.per_gate and self.values["recurrent"].dim() > 0
        if self.rec_per_gate:  # [.., B, G, H] -> [.., G, B, H] for bmm
            self.values["recurrent"] = self.values["recurrent"].transpose(-3, -2)

    def at(self, site: str, t: int) -> Tensor | None:
        m = self.values.get(site)
        if m is None or site not in self.step:
            return m
        return m[t]

    def has(self, site: str) -> bool:
        return site in self.values

    def recurrent_all(self, T: int) -> Tensor | None:
        """The recurrent mask for every step, broadcastable to ``[T, B, H]`` (per gate:
        ``[T, G, B, H]``)."""
        m = self.values.get("recurrent")
        if m is None or m.dim() == 0 or "recurrent" in self.step:
            return m
        return m.unsqueeze(0)


def _recurrent_in(h: Tensor, mr: Tensor | None, buf: Tensor) -> Tensor:
    return h if mr is None else torch.mul(h, mr, out=buf)


def _gate_product(xw_t: Tensor, h: Tensor, w: Tensor, wt: Tensor, mr: Tensor | None,
                  per_gate: bool, hbuf: Tensor, out: Tensor) -> None:
    """``out = xw_t + (h m_rec) W^T``; per-gate masks use one batched product."""
    if per_gate:
        G, H = w.shape[0] // w.shape[1], w.shape[1]
        hg = h.unsqueeze(0) * mr  # [G, B, H]
        prod = torch.bmm(hg, w.view(G, H, H).transpose(1, 2))  # [G, B, H]
        torch.add(xw_t.view(-1, G, H), prod.transpose(0, 1), out=out.view(-1, G, H))
    else:
        torch.addmm(xw_t, _recurrent_in(h, mr, hbuf), wt, out=out)


def _hidden_back(dA_t: Tensor, w: Tensor, mr: Tensor | None, per_gate: bool, out: Tensor) -> None:
    """``out = (dA_t W) m_rec`` (gradient reaching h_{t-1} through the recurrent product)."""
    if per_gate:
        G, H = w.shape[0] // w.shape[1], w.shape[1]
        dg = torch.bmm(dA_t.view(-1, G, H).transpose(0, 1), w.view(G, H, H))  # [G, B, H]
        torch.sum(dg * mr, dim=0, out=out)
    else:
        torch.mm(dA_t, w, out=out)
        if mr is not None:
            out.mul_(mr)


def _weight_grad(dA: Tensor, h0: Tensor, out: Tensor, M: _Masks, G: int) -> Tensor:
    """``dW_hh = sum_t dA_t^T (h_{t-1} m_rec)`` as one product over ``T x B``."""
    T, B, GH = dA.shape
    H = GH // G
    h_prev = torch.cat([h0.unsqueeze(0), out[:-1]], dim=0)  # [T, B, H]
    mr = M.recurrent_all(T)
    if M.rec_per_gate:
        hg = h_prev.unsqueeze(1) * mr  # [T, G, B, H]
        dAg = dA.view(T, B, G, H).permute(2, 3, 0, 1).reshape(G, H, T * B)
        return torch.bmm(dAg, hg.permute(1, 0, 2, 3).reshape(G, T * B, H)).reshape(GH, H)
    if mr is not None:
        h_prev = h_prev * mr
    return dA.reshape(T * B, GH).t().mm(h_prev.reshape(T * B, H))


def _zeros_or(x: Tensor | None, like: Tensor) -> Tensor:
    return torch.zeros_like(like) if x is None else x.clone()


class _FusedLSTM(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, xw: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor,
                masks: _Masks) -> tuple[Tensor, Tensor, Tensor]:
        T, B, GH = xw.shape
        H = GH // 4
        gates = torch.empty_like(xw)
        out = xw.new_empty(T, B, H)
        c_all = xw.new_empty(T + 1, B, H)
        c_all[0] = c0
        tch = xw.new_empty(T, B, H)
        oeff = xw.new_empty(T, B, H) if masks.has("output_gate") else None
        ws = pw.LSTMWorkspace.make(xw, B, H)
        wt = w_hh.t()
        h = h0
        for t in range(T):
            _gate_product(xw[t], h, w_hh, wt, masks.at("recurrent", t), masks.rec_per_gate,
                          ws.hm, gates[t])
            pw.lstm_forward_step(t, gates[t], h, c_all[t], c_all[t + 1], tch[t], out[t],
                                 None if oeff is None else oeff[t],
                                 None if oeff is None or t == 0 else oeff[t - 1], masks, ws)
            h = out[t]
        ctx.save_for_backward(w_hh, h0, gates, out, c_all, tch)
        ctx.oeff, ctx.masks = oeff, masks
        return out, out[-1].clone(), c_all[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_out: Tensor | None, d_hT: Tensor | None,
                 d_cT: Tensor | None) -> tuple[Tensor | None, ...]:
        w_hh, h0, gates, out, c_all, tch = ctx.saved_tensors
        masks: _Masks = ctx.masks
        T, B, GH = gates.shape
        H = GH // 4
        dA = torch.empty_like(gates)
        dh, dc = _zeros_or(d_hT, h0), _zeros_or(d_cT, h0)
        ws = pw.LSTMBackWorkspace.make(h0, masks.has("output_gate"))
        for t in range(T - 1, -1, -1):
            if d_out is not None:
                dh.add_(d_out[t])
            direct = pw.lstm_backward_step(t, dh, dc, gates[t], c_all[t], tch[t],
                                           None if ctx.oeff is None else ctx.oeff[t], dA[t],
                                           masks, ws)
            _hidden_back(dA[t], w_hh, masks.at("recurrent", t), masks.rec_per_gate, dh)
            if direct is not None:
                dh.add_(direct)
        need = ctx.needs_input_grad
        dW = _weight_grad(dA, h0, out, masks, 4) if need[1] else None
        return (dA if need[0] else None, dW, dh if need[2] else None,
                dc if need[3] else None, None)


class _FusedGRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, xw: Tensor, w_hh: Tensor, b_hh: Tensor | None, h0: Tensor,
                masks: _Masks) -> tuple[Tensor, Tensor]:
        T, B, GH = xw.shape
        H = GH // 3
        hh = xw.new_empty(T, B, GH)   # recurrent products (+ b_hh)
        act = xw.new_empty(T, B, GH)  # r, z, n (n before the update mask)
        out = xw.new_empty(T, B, H)
        ws = pw.GRUWorkspace.make(xw, B, H)
        bias = b_hh if b_hh is not None else xw.new_zeros(GH)
        bias = bias.expand(B, GH)
        wt = w_hh.t()
        h = h0
        for t in range(T):
            _gate_product(bias, h, w_hh, wt, masks.at("recurrent", t), masks.rec_per_gate,
                          ws.hm, hh[t])
            pw.gru_forward_step(t, xw[t], hh[t], act[t], h, out[t], masks, ws)
            h = out[t]
        ctx.save_for_backward(w_hh, h0, hh, act, out)
        ctx.masks, ctx.has_bias = masks, b_hh is not None
        return out, out[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_out: Tensor | None, d_hT: Tensor | None
                 ) -> tuple[Tensor | None, ...]:
        w_hh, h0, hh, act, out = ctx.saved_tensors
        masks: _Masks = ctx.masks
        T, B, GH = act.shape
        dxw = torch.empty_like(act)
        dhh = torch.empty_like(act)
        dh = _zeros_or(d_hT, h0)
        ws = pw.GRUBackWorkspace.make(h0)
        for t in range(T - 1, -1, -1):
            if d_out is not None:
                dh.add_(d_out[t])
            h_prev = h0 if t == 0 else out[t - 1]
            direct = pw.gru_backward_step(t, dh, h_prev, hh[t], act[t], dxw[t], dhh[t], masks, ws)
            _hidden_back(dhh[t], w_hh, masks.at("recurrent", t), masks.rec_per_gate, dh)
            dh.add_(direct)
        need = ctx.needs_input_grad
        dW = _weight_grad(dhh, h0, out, masks, 3) if need[1] else None
        db = dhh.sum(dim=(0, 1)) if need[2] and ctx.has_bias else None
        return dxw if need[0] else None, dW, db, dh if need[3] else None, None


class _FusedRNN(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, xw: Tensor, w_hh: Tensor, h0: Tensor, masks: _Masks,
                relu: bool) -> tuple[Tensor, Tensor]:
        T, B, H = xw.shape
        pre = torch.empty_like(xw)  # activations before the hidden mask
        out = xw.new_empty(T, B, H)
        ws = pw.RNNWorkspace.make(xw, B, H)
        wt = w_hh.t()
        h = h0
        for t in range(T):
            _gate_product(xw[t], h, w_hh, wt, masks.at("recurrent", t), False, ws.hm, pre[t])
            pw.rnn_forward_step(t, pre[t], h, out[t], masks, ws, relu)
            h = out[t]
        ctx.save_for_backward(w_hh, h0, pre, out)
        ctx.masks, ctx.relu = masks, relu
        return out, out[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_out: Tensor | None, d_hT: Tensor | None
                 ) -> tuple[Tensor | None, ...]:
        w_hh, h0, pre, out = ctx.saved_tensors
        masks: _Masks = ctx.masks
        T = pre.shape[0]
        dA = torch.empty_like(pre)
        dh = _zeros_or(d_hT, h0)
        ws = pw.RNNBackWorkspace.make(h0)
        for t in range(T - 1, -1, -1):
            if d_out is not None:
                dh.add_(d_out[t])
            direct = pw.rnn_backward_step(t, dh, pre[t], dA[t], masks, ws, ctx.relu)
            _hidden_back(dA[t], w_hh, masks.at("recurrent", t), False, dh)
            if direct is not None:
                dh.add_(direct)
        need = ctx.needs_input_grad
        dW = _weight_grad(dA, h0, out, masks, 1) if need[1] else None
        return dA if need[0] else None, dW, dh if need[2] else None, None, None


def fused_layer(cell: CellSpec, x: Tensor, h0: Tensor, c0: Tensor | None, w: LayerWeights,
                masks: LayerMasks, nonlinearity: str = "tanh"
                ) -> tuple[Tensor, Tensor, Tensor | None]:
    """Same contract as :func:`models.paths.reference_layer`, as one fused Function."""
    if cell.name not in _CELLS:
        raise ValueError(f"the fused path has no {cell.name!r} cell; use path='reference'")
    if cell.name == "rnn" and "recurrent" in masks.per_gate:
        raise ValueError("a vanilla RNN has one gate block; per-gate recurrent masks do not apply")
    xw = input_projection(x, w, masks, cell.gates, fold_hh_bias=cell.name != "gru")
    w_hh = w.w_hh
    if "weight" in masks.values:
        w_hh = w_hh * masks.values["weight"]
    M = _Masks(masks)
    if cell.name == "lstm":
        if c0 is None:
            raise ValueError("an LSTM layer needs an initial cell state c0")
        return _FusedLSTM.apply(xw, w_hh, h0, c0, M)
    if cell.name == "gru":
        out, h = _FusedGRU.apply(xw, w_hh, w.b_hh, h0, M)
        return out, h, None
    out, h = _FusedRNN.apply(xw, w_hh, h0, M, nonlinearity == "relu")
    return out, h, None
