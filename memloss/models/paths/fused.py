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
    """The buffers of one sequence and every step's kernel arguments (views into them, laid
    out once), kept from the forward for the backward."""

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
        self.bind_output(self.out)
        pres = self.pre.unbind(0)
        X = xp.unbind(0)
        self.pres = [(pres[t],) if run.cell.joint else (X[t], pres[t]) for t in range(T)]
        self.m_next = [[self.rec[min(t + 1, T - 1)]] if run.next_rec else [] for t in range(T)]
        self.layouts = [Layout(len(self.pres[t]), tuple(s is not None for s in self.prev[t]),
                               run.sites, run.params, run.next_rec) for t in range(T)]

    def bind_output(self, out: Tensor) -> None:
        """Per step: the previous state (None: a carried state not given at the start) and
        the new state, as views of ``out`` and the other state buffers."""
        T = self.T
        self.out = out
        outs = out.unbind(0)
        extras = [b.unbind(0) for b in self.extra]
        self.prev = [[self.state0[0] if t == 0 else outs[t - 1]]
                     + [None if t == 0 and s is None else e[t]
                        for e, s in zip(extras, self.state0[1:])] for t in range(T)]
        self.new = [[outs[t]] + [e[t + 1] for e in extras] for t in range(T)]

    def release_output(self) -> None:
        """Drop every reference to the output. Kept between forward and backward on the
        autograd node's context, views of the output (whose base holds that node) would make
        a cycle through C++ that Python's collector cannot see: each training step's buffers
        would never be freed."""
        self.out = None  # type: ignore[assignment]
        self.prev = self.new = []

    def _common_args(self, t: int) -> list[Tensor]:
        return [*self.pres[t], *(s for s in self.prev[t] if s is not None),
                *self.step_masks[t], *self.p, *self.m_next[t]]

    def run_forward(self) -> None:
        r, T = self.run, self.T
        w_t = self.w_hh.t()
        hm = self.hm.unbind(0) if self.hm is not None else [s[0] for s in self.prev]
        if self.hm is not None:
            torch.mul(self.state0[0], self.rec[0], out=self.hm[0])
        args = [self._common_args(t) + self.new[t] + ([hm[t + 1]] if self.hm is not None else [])
                for t in range(T)]
        kernels: dict[Layout, Any] = {}
        steps = []
        for t in range(T):
            lay = self.layouts[t]
            if lay not in kernels:
                kernels[lay] = forward_kernel(r.cell, r.nonlinearity, lay, args[t])
            steps.append(kernels[lay])
        pre = self.pre.unbind(0)
        if r.per_gate:
            for t in range(T):
                h = self.prev[t][0]
                assert h is not None
                prod = recurrent_pre(h, self.w_hh, self.b_rec, self.rec[t], True)
                if r.cell.joint:
                    torch.add(self.xp[t], prod, out=pre[t])
                else:
                    pre[t].copy_(prod)
                steps[t](*args[t])
            return
        # the product adds into its slot, which starts as the input part (joint cells) or
        # the recurrent bias: one copy for the sequence instead of one per step
        base = self.xp if r.cell.joint else self.b_rec
        if base is None:
            for t in range(T):
                torch.mm(hm[t], w_t, out=pre[t])
                steps[t](*args[t])
            return
        self.pre.copy_(base.expand_as(self.pre))
        for t in range(T):  # the loop every step of every sequence runs: keep it bare
            pre[t].addmm_(hm[t], w_t)
            steps[t](*args[t])

    def final_state_of(self, out: Tensor) -> tuple[Tensor, ...]:
        return (out[-1].clone(), *(b[self.T].clone() for b in self.extra))

    # --- backward -----------------------------------------------------------------------
    def run_backward(self, d_out: Tensor | None, d_final: Sequence[Tensor | None],
                     need_w: bool, need_b: bool) -> tuple[Tensor | None, ...]:
        r, T, B, H = self.run, self.T, self.B, self.H
        n = len(self.prev[0])
        zeros = self.out.new_zeros(B, H)
        D = d_out.contiguous().unbind(0) if d_out is not None else (zeros,) * T
        # gradients of the state: step t reads one set and writes the other
        dS = [[self.out.new_zeros(B, H) for _ in range(n)] for _ in range(2)]
        for buf, d in zip(dS[0], d_final):
            if d is not None:
                buf.copy_(d)
        d_pre = torch.empty_like(self.pre)
        d_x = d_pre if r.cell.joint else torch.empty_like(self.xp)
        dP, dX = d_pre.unbind(0), d_x.unbind(0)
        dh_rec = self.out.new_zeros(B, H)
        kernels: dict[Layout, Any] = {}
        steps = []
        for t in range(T - 1, -1, -1):
            d_in, d_new = dS[(T - 1 - t) % 2], dS[(T - t) % 2]
            given = [d for d, s in zip(d_new, self.prev[t]) if s is not None]
            bufs = [dP[t]] if r.cell.joint else [dX[t], dP[t]]
            args = self._common_args(t) + d_in + [dh_rec, D[t]] + bufs + given
            lay = self.layouts[t]
            if lay not in kernels:
                kernels[lay] = backward_kernel(r.cell, r.nonlinearity, lay, args)
            steps.append((kernels[lay], args))
        d_p = [torch.zeros_like(p) for p in self.p]
        for (kernel, args), t in zip(steps, range(T - 1, -1, -1)):
            res = kernel(*args)
            for acc, g in zip(d_p, res):
                acc.add_(g)
            if r.per_gate:
                dh_rec.copy_(self._per_gate_grad(dP[t], t))
            else:
                torch.mm(dP[t], self.w_hh, out=dh_rec)
        d_state = dS[T % 2]
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
        final = seq.final_state_of(out)
        ctx.save_for_backward(out)  # an output: saved this way, not kept on ctx (no cycle)
        seq.release_output()
        ctx.seq = seq  # type: ignore[attr-defined]
        return (out, *final)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_out: Tensor | None, *d_final: Tensor | None
                 ) -> tuple[Tensor | None, ...]:
        seq: _Sequence = ctx.seq  # type: ignore[attr-defined]
        seq.bind_output(ctx.saved_tensors[0])  # type: ignore[attr-defined]
        need = ctx.needs_input_grad  # type: ignore[attr-defined]
        try:
            d_x, dW, db, *rest = seq.run_backward(d_out, d_final, need[2], need[3])
        finally:
            seq.release_output()
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
