"""The fused path: one ``torch.autograd.Function`` per layer over the whole sequence, its
pointwise work derived from the cell's step (:mod:`memloss.models.paths.kernels`).

Same contract and masks as the reference path, so both give the same outputs, states and
gradients (tests check this in float64 for every cell x scheme). What is done here, and
is the same for every cell:

* the input product of all ``T`` steps is one product before the loop (autograd gives its
  backward: two products over ``T x B``);
* the forward loop does, per step, the recurrent product into the step's slot of a buffer
  (``addmm`` with the input part, or the product alone for cells that take the parts apart)
  and one forward step kernel, which writes the new state into the sequence's buffers (and
  ``h_t m_rec,t+1`` for the next product when the recurrent mask is tied);
* the backward loop does, per step, one backward step kernel (the vector-Jacobian product
  of the step, with the three gradients reaching ``h_t`` summed in) and one product
  ``dR_t W_hh`` carrying the gradient to ``h_{t-1}``; the recurrent-weight gradient is one
  product over ``T x B`` after the loop.

Per-gate (untied) recurrent masks use an einsum per step instead of one product. Masks are
constants (no gradient flows into them); no double backward.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from ..cells import CellSpec
from ..masks import LayerMasks
from ..sites import step_sites
from .common import (Params, State, check_layer, input_pre, recurrent_bias, recurrent_pre,
                     recurrent_weight, step_params)
from .kernels import Layout, backward_kernel, forward_kernel

__all__ = ["fused_layer"]


@dataclass(frozen=True)
class _Run:
    """What the sequence Function needs besides tensors."""

    cell: CellSpec
    nonlinearity: str
    masks: LayerMasks
    sites: tuple[str, ...]   # the step's mask sites, in kernel argument order
    params: tuple[str, ...]  # the step parameters, in kernel argument order
    per_gate: bool           # per-gate recurrent masks (einsum products)
    next_rec: bool           # a tied recurrent mask folded into the kernels


class _Sequence:
    """The buffers and per-step views of one sequence (forward), kept for the backward."""

    def __init__(self, run: _Run, xp: Tensor, w_hh: Tensor, b_rec: Tensor | None,
                 p: Sequence[Tensor], state0: Sequence[Tensor | None]) -> None:
        T, B, GH = xp.shape
        H = w_hh.shape[1]
        self.run, self.T, self.B, self.H = run, T, B, H
        self.xp, self.w_hh, self.b_rec, self.p = xp, w_hh, b_rec, tuple(p)
        self.state0 = tuple(None if s is None else s.contiguous() for s in state0)
        new = xp.new_empty
        self.out = new(T, B, H)
        self.extra = [new(T + 1, B, H) for _ in self.state0[1:]]  # other states, [0] = initial
        for buf, s in zip(self.extra, self.state0[1:]):
            if s is not None:
                buf[0].copy_(s)
        self.pre = new(T, B, GH)  # joint: the whole pre-activation; else the recurrent part
        self.rec = run.masks.steps("recurrent", T)
        self.hm = new(T + 1, B, H) if run.next_rec else None  # h~_{t-1} = h_{t-1} m_rec,t
        cols = [run.masks.steps(s, T) for s in run.sites]
        self.step_masks = [[c[t] for c in cols] for t in range(T)]

    # per-step views
    def prev(self, t: int) -> list[Tensor | None]:
        h = self.state0[0] if t == 0 else self.out[t - 1]
        return [h] + [None if t == 0 and s is None else b[t]
                      for b, s in zip(self.extra, self.state0[1:])]

    def new(self, t: int) -> list[Tensor]:
        return [self.out[t]] + [b[t + 1] for b in self.extra]

    def pres(self, t: int) -> tuple[Tensor, ...]:
        return (self.pre[t],) if self.run.cell.joint else (self.xp[t], self.pre[t])

    def m_next(self, t: int) -> list[Tensor]:
        if not self.run.next_rec:
            return []
        m = self.rec[min(t + 1, self.T - 1)]  # the last step's is written but never read
        assert m is not None
        return [m]

    def layout(self, t: int) -> Layout:
        r = self.run
        return Layout(1 if r.cell.joint else 2, tuple(s is not None for s in self.prev(t)),
                      r.sites, r.params, r.next_rec)

    def forward_args(self, t: int) -> list[Tensor]:
        args = [*self.pres(t), *(s for s in self.prev(t) if s is not None),
                *self.step_masks[t], *self.p, *self.m_next(t), *self.new(t)]
        if self.hm is not None:
            args.append(self.hm[t + 1])
        return args

    def product(self, t: int, h: Tensor) -> None:
        """The recurrent product of step ``t`` into its slot of ``self.pre``."""
        r, pre = self.run, self.pre[t]
        if r.per_gate:
            prod = recurrent_pre(h, self.w_hh, self.b_rec, self.rec[t], True)
            if r.cell.joint:
                torch.add(self.xp[t], prod, out=pre)
            else:
                pre.copy_(prod)
            return
        hm = h if self.hm is None else self.hm[t]
        base = self.xp[t] if r.cell.joint else self.b_rec
        if base is None:
            torch.mm(hm, self.w_t, out=pre)
        else:
            torch.addmm(base, hm, self.w_t, out=pre)

    def run_forward(self) -> None:
        r, T = self.run, self.T
        self.w_t = self.w_hh.t()
        if self.hm is not None:
            torch.mul(self.state0[0], self.rec[0], out=self.hm[0])
        kernels = {}
        for t in range(T):
            lay = self.layout(t)
            args = self.forward_args(t)
            kernel = kernels.get(lay)
            if kernel is None:
                kernel = kernels[lay] = forward_kernel(r.cell, r.nonlinearity, lay, args)
            h = self.prev(t)[0]
            assert h is not None
            self.product(t, h)
            kernel(*args)

    def final_state_of(self, out: Tensor) -> tuple[Tensor, ...]:
        return (out[-1].clone(), *(b[self.T].clone() for b in self.extra))

    # --- backward -----------------------------------------------------------------------
    def run_backward(self, d_out: Tensor | None, d_final: Sequence[Tensor | None],
                     need_w: bool, need_b: bool) -> tuple[Tensor | None, ...]:
        r, T, B, H = self.run, self.T, self.B, self.H
        zeros = self.out.new_zeros(B, H)
        D = d_out.contiguous().unbind(0) if d_out is not None else (zeros,) * T
        d_state = [zeros if d is None else d.contiguous() for d in d_final]
        d_pre = torch.empty_like(self.pre)
        d_x = d_pre if r.cell.joint else torch.empty_like(self.xp)
        dh_rec = self.out.new_zeros(B, H)
        d_p = [torch.zeros_like(p) for p in self.p]
        kernels: dict[Layout, Any] = {}
        for t in range(T - 1, -1, -1):
            lay = self.layout(t)
            given = [s for s in self.prev(t) if s is not None]
            bufs = (d_pre[t],) if r.cell.joint else (d_x[t], d_pre[t])
            args = [*self.pres(t), *given, *self.step_masks[t], *self.p, *self.m_next(t),
                    *d_state, dh_rec, D[t], *bufs]
            kernel = kernels.get(lay)
            if kernel is None:
                kernel = kernels[lay] = backward_kernel(r.cell, r.nonlinearity, lay, args)
            res = kernel(*args)
            n = len(given)
            d_state = list(res[:n]) + d_state[n:]
            for acc, g in zip(d_p, res[n:]):
                acc.add_(g)
            if r.per_gate:
                dh_rec = self._per_gate_grad(d_pre[t], t)
            else:
                torch.mm(d_pre[t], self.w_hh, out=dh_rec)
        m0 = self.rec[0]
        dh0 = d_state[0] + (dh_rec if r.per_gate or m0 is None else dh_rec * m0)
        dW = self._weight_grad(d_pre) if need_w else None
        db = d_pre.sum((0, 1)) if need_b and self.b_rec is not None else None
        return (d_x, dW, db, *d_p, dh0, *d_state[1:])

    def _per_gate_grad(self, dr: Tensor, t: int) -> Tensor:
        """``sum_g (dr_g W_g) m_rec,g``: the gradient reaching h_{t-1} under per-gate masks."""
        m = self.rec[t]  # [B, G, H]
        assert m is not None
        G, H = m.shape[-2], self.H
        return torch.einsum("bgk,gkh,bgh->bh", dr.view(-1, G, H), self.w_hh.view(G, H, H), m)

    def _weight_grad(self, dR: Tensor) -> Tensor:
        """``dW_hh = sum_t dR_t^T h~_{t-1}`` as products over ``T x B``."""
        T, B, GH = dR.shape
        H = self.H
        if self.run.per_gate:
            G = GH // H
            h0 = self.state0[0]
            assert h0 is not None
            h_prev = torch.cat([h0.unsqueeze(0), self.out[:-1]])
            m = self.run.masks.values["recurrent"]  # [T, B, G, H] or [B, G, H]
            hg = h_prev.unsqueeze(-2) * m
            return torch.einsum("tbgk,tbgh->gkh", dR.view(T, B, G, H), hg).reshape(GH, H)
        if self.hm is not None:
            return dR.reshape(T * B, GH).t().mm(self.hm[:T].reshape(T * B, H))
        h0 = self.state0[0]
        assert h0 is not None
        dW = dR[0].t().mm(h0)
        if T > 1:
            dW.addmm_(dR[1:].reshape(-1, GH).t(), self.out[:-1].reshape(-1, H))
        return dW


class _Fused(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, run: _Run, xp: Tensor, w_hh: Tensor, b_rec: Tensor | None,
                n_p: int, *rest: Tensor | None) -> tuple[Tensor, ...]:
        seq = _Sequence(run, xp, w_hh, b_rec, rest[:n_p], rest[n_p:])
        seq.run_forward()
        out = seq.out
        ctx.save_for_backward(out)  # an output: saved this way, not kept on ctx (no cycle)
        seq.out = None  # type: ignore[assignment]
        ctx.seq = seq  # type: ignore[attr-defined]
        return (out, *seq.final_state_of(out))

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_out: Tensor | None, *d_final: Tensor | None
                 ) -> tuple[Tensor | None, ...]:
        seq: _Sequence = ctx.seq  # type: ignore[attr-defined]
        (seq.out,) = ctx.saved_tensors  # type: ignore[attr-defined]
        need = ctx.needs_input_grad  # type: ignore[attr-defined]
        d_x, dW, db, *rest = seq.run_backward(d_out, d_final, need[2], need[3])
        n_p = len(seq.p)
        d_p, d_state0 = rest[:n_p], rest[n_p:]
        d_state0 = [d if s is not None else None for d, s in zip(d_state0, seq.state0)]
        return (None, d_x if need[1] else None, dW, db, None, *d_p, *d_state0)


def fused_layer(cell: CellSpec, x: Tensor, state: State, params: Params, masks: LayerMasks,
                nonlinearity: str = "tanh") -> tuple[Tensor, State]:
    """Same contract as :func:`memloss.models.paths.reference.reference_layer`."""
    check_layer(cell, masks)
    xp = input_pre(cell, x, params, masks).contiguous()
    w_hh, b_rec = recurrent_weight(params, masks), recurrent_bias(cell, params)
    p = step_params(cell, params)
    M = LayerMasks({k: v.contiguous() for k, v in masks.values.items()
                    if k not in ("input", "weight")}, masks.step, masks.per_gate)
    rec = M.values.get("recurrent")
    run = _Run(cell, nonlinearity, M, tuple(s for s in step_sites() if s in M.values),
               tuple(p), M.rec_per_gate, rec is not None and not M.rec_per_gate)
    if not torch.is_grad_enabled():
        seq = _Sequence(run, xp, w_hh, b_rec, tuple(p.values()), state)
        seq.run_forward()
        return seq.out, seq.final_state_of(seq.out)
    out, *final = _Fused.apply(run, xp, w_hh, b_rec, len(p), *p.values(), *state)
    return out, tuple(final)
