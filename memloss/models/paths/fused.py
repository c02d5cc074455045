"""The fused path: one ``torch.autograd.Function`` per layer over the whole sequence, its
pointwise work derived from the cell's step (:mod:`memloss.models.paths.kernels`).

Same contract and masks as the reference path, so both give the same outputs, states and
gradients (tests check this in float64 for every cell x scheme). What is done here, and
is the same for every cell:

* the input product of all ``T`` steps is one product before the loop (its backward: two
  products over ``T x B``; :class:`_InputProduct` where
  :mod:`~memloss.models.paths.products` pads or runs them on oneDNN); per-gate input masks
  take one product per gate block into the columns of one output (:class:`_GateProduct`),
  no ``[T, B, G, I]`` copy;
* the forward loop does, per step, the recurrent product added into the step's slot of the
  pre-activations (for joint cells the input product's own tensor, written in place: no
  copy) and one forward step kernel, which writes the new state into the sequence's
  buffers, what the backward reads (the gate activations...) into per-step save buffers
  and, under a sampled recurrent mask, ``h_t m_rec,t+1`` for the next product
  (``[B, G, H]`` with one mask per gate block: then the product is one ``addmm`` per gate
  block into its columns);
* the backward loop does, per step, one backward step kernel (the step's backward graph
  on the saved values, no recomputation, with the three gradients reaching ``h_t`` summed
  in; where it reads no pre-activation, their gradients overwrite them) and one product
  ``dR_t W_hh`` (per gate block: one batched product into a contiguous ``[G, B, H]``
  buffer, which the kernels read as ``[B, G, H]``)
  carrying the gradient to ``h_{t-1}``; the recurrent-weight gradient is one product over
  ``T x B`` after the loop (one per gate block).

Masks are constants (no gradient flows into them); no double backward. Each step's kernel
is bound to its arguments once per sequence (:meth:`~memloss.models.paths.kernels.Kernel.bind`:
on CPU a compiled kernel's C++ function itself, with its temporaries made once), and the
loops call the bound kernels with no arguments. The sequence keeps views of its own output
buffer; the layer returns another tensor on the same memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from ..cells import CellSpec
from ..masks import LayerMasks
from ..sites import step_sites
from .common import (Params, State, check_layer, input_pre, recurrent_bias, recurrent_weight,
                     step_params)
from .kernels import Layout, backward_kernel, forward_kernel, inference_kernel, step_plan
from .products import ALIGN, mm, pack, packed_linear, use_onednn

__all__ = ["fused_layer", "BMM_BELOW"]

#: per-gate recurrent products: one batched product over the gate blocks per step below
#: this H, one ``addmm_`` per block from it on (forward; measured at B=32, one thread: at
#: H=64 the batched product took 70 us against 94 us, at H=256 463 us against 400 us). The
#: backward's products are always batched (34 against 68 us at H=64, 370 against 441 at 256)
BMM_BELOW = 256


class _GateProduct(torch.autograd.Function):
    """``out[..., g] = (x m_g) W_g^T`` for every gate block ``g`` ([T, B, G*H]) with ``m``
    ``[T, B, G, I]`` or ``[B, G, I]``: one product per block into its columns; the backward
    recomputes ``x m_g`` (nothing ``[T, B, G, I]`` is kept)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, m: Tensor, w: Tensor) -> Tensor:
        T, B, I = x.shape
        G = m.shape[-2]
        H = w.shape[0] // G
        out = x.new_empty(T * B, G * H)
        xm = x.new_empty(T, B, I)
        for g in range(G):
            torch.mul(x, m[..., g, :], out=xm)
            mm(xm.view(T * B, I), w[g * H:(g + 1) * H].t(), out=out[:, g * H:(g + 1) * H])
        ctx.save_for_backward(x, m, w)
        return out.view(T, B, G * H)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor | None, ...]:
        x, m, w = ctx.saved_tensors  # type: ignore[attr-defined]
        need_x, _, need_w = ctx.needs_input_grad  # type: ignore[attr-defined]
        T, B, I = x.shape
        G = m.shape[-2]
        H = w.shape[0] // G
        dy = dy.reshape(T * B, G * H)
        dx = x.new_zeros(T, B, I) if need_x else None
        dw = torch.empty_like(w) if need_w else None
        tmp = x.new_empty(T, B, I)
        for g in range(G):
            rows = slice(g * H, (g + 1) * H)
            if dx is not None:
                mm(dy[:, rows], w[rows], out=tmp.view(T * B, I))
                dx.addcmul_(tmp, m[..., g, :])
            if dw is not None:
                torch.mul(x, m[..., g, :], out=tmp)
                mm(dy[:, rows].t(), tmp.view(T * B, I), out=dw[rows])
        return dx, None, dw


def _gate_product(x: Tensor, m: Tensor, w: Tensor) -> Tensor:
    return _GateProduct.apply(x, m, w)


class _InputProduct(torch.autograd.Function):
    """``x W^T + b`` ([T, B, I] -> [T, B, G*H]): on oneDNN with ``W`` packed where
    :func:`~memloss.models.paths.products.use_onednn` says, else as ``F.linear`` computes it;
    its backward's two products over ``T x B`` (``dy W`` and ``dy^T x``, rows of ``I``
    values) go through :func:`~memloss.models.paths.products.mm`."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, w: Tensor, b: Tensor | None, onednn: bool
                ) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None  # type: ignore[attr-defined]
        if onednn:
            rows = x.numel() // x.shape[-1]
            out = packed_linear(x.reshape(rows, -1), pack(w, rows), b)
            return out.view(*x.shape[:-1], w.shape[0])
        return F.linear(x, w, b)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor | None, ...]:
        x, w = ctx.saved_tensors  # type: ignore[attr-defined]
        need_x, need_w, need_b, _ = ctx.needs_input_grad  # type: ignore[attr-defined]
        dy2 = dy.reshape(-1, dy.shape[-1])
        dx = mm(dy2, w).view(x.shape) if need_x else None
        dw = mm(dy2.t(), x.reshape(-1, x.shape[-1])) if need_w else None
        db = dy2.sum(0) if need_b and ctx.has_bias else None  # type: ignore[attr-defined]
        return dx, dw, db, None


def _input_product(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    # the Function where its forward runs on oneDNN or its backward's rows (I values) are of
    # a width MKL may run slower than padded (products.py); elsewhere autograd's own linear
    rows, I = x.numel() // x.shape[-1], x.shape[-1]
    onednn = use_onednn(rows, I, w.shape[0], x)
    if x.device.type == "cpu" and (I % ALIGN or onednn):
        return _InputProduct.apply(x, w, b, onednn)
    return F.linear(x, w, b)


@dataclass(frozen=True)
class _Run:
    """What the sequence Function needs besides tensors."""

    cell: CellSpec
    nonlinearity: str
    masks: LayerMasks
    sites: tuple[str, ...]   # the step's mask sites, in kernel argument order
    params: tuple[str, ...]  # the step parameters, in kernel argument order
    per_gate: bool           # per-gate recurrent masks (one product per gate block)
    next_rec: bool           # a recurrent mask folded into the kernels


class _Sequence:
    """The buffers of one sequence and every step's kernel arguments (views into them, laid
    out once), kept from the forward for the backward."""

    def __init__(self, run: _Run, xp: Tensor, w_hh: Tensor, b_rec: Tensor | None,
                 p: Sequence[Tensor], state0: Sequence[Tensor | None]) -> None:
        T, B, GH = xp.shape
        H = w_hh.shape[1]
        G = GH // H
        self.run, self.T, self.B, self.H, self.G = run, T, B, H, G
        self.w_hh, self.b_rec, self.p = w_hh, b_rec, tuple(p)
        self.state0 = tuple(None if s is None else s.contiguous() for s in state0)
        new = xp.new_empty
        self.out = new(T, B, H)
        self.extra = [new(T + 1, B, H) for _ in self.state0[1:]]  # other states, [0] = initial
        for buf, s in zip(self.extra, self.state0[1:]):
            if s is not None:
                buf[0].copy_(s)
        # joint cells: the whole pre-activation, in the input product's tensor (fused_layer);
        # else the recurrent part beside the input part xp
        self.xp = xp
        self.pre = xp if run.cell.joint else new(T, B, GH)
        self.rec = run.masks.steps("recurrent", T)
        # h~_{t-1} = h_{t-1} m_rec,t ([T+1, B, H]; per gate block [T+1, B, G, H])
        self.hm = (None if not run.next_rec else
                   new(T + 1, B, G, H) if run.per_gate else new(T + 1, B, H))
        cols = [run.masks.steps(s, T) for s in run.sites]
        self.step_masks = [[c[t] for c in cols] for t in range(T)]
        self._bind_states(self.out)
        # each step's views, made once per sequence (a view costs about 1 us)
        self.pre_t = self.pre.unbind(0)
        self.xp_t = self.pre_t if run.cell.joint else xp.unbind(0)
        self.pres = [(self.pre_t[t],) if run.cell.joint else (self.xp_t[t], self.pre_t[t])
                     for t in range(T)]
        self.m_next = [[self.rec[min(t + 1, T - 1)]] if run.next_rec else [] for t in range(T)]
        first = Layout(len(self.pres[0]), tuple(s is not None for s in self.prev[0]),
                       run.sites, run.params, run.next_rec)
        rest = Layout(first.n_pre, (True,) * len(first.present), run.sites, run.params,
                      run.next_rec)
        self.layouts = [first] + [rest] * (T - 1)
        # the steps of each layout (the first step's differs where a carried state is absent)
        self.groups = ([(rest, list(range(T)))] if first == rest else
                       [(first, [0])] + ([(rest, list(range(1, T)))] if T > 1 else []))
        self.saves: list[list[Tensor]] = [[] for _ in range(T)]  # per step: what bwd reads
        self.common: list[list[Tensor]] = []  # per step: the kernels' first arguments
        self.reads_pre = True

    def _keep_for_backward(self) -> None:
        """Each step's save buffers (views of one ``[steps, ...]`` buffer per value and
        layout), as the layout's :class:`~memloss.models.paths.kernels.StepPlan` says."""
        r = self.run
        self.reads_pre = False
        for lay, ts in self.groups:
            t0 = ts[0]
            inputs = [*self.pres[t0], *(s for s in self.prev[t0] if s is not None),
                      *self.step_masks[t0], *self.p]
            plan = step_plan(r.cell, r.nonlinearity, lay, inputs)
            self.reads_pre |= plan.reads_pre
            bufs = [self.xp.new_empty(len(ts), *shape, dtype=dtype).unbind(0)
                    for shape, dtype in plan.buffers]
            for j, t in enumerate(ts):
                self.saves[t] = [b[j] for b in bufs]

    def _bind_states(self, out: Tensor) -> None:
        """Per step: the previous state (None: a carried state not given at the start) and
        the new state, as views of ``out`` and the other state buffers."""
        T = self.T
        outs = out.unbind(0)
        extras = [b.unbind(0) for b in self.extra]
        self.prev = [[self.state0[0] if t == 0 else outs[t - 1]]
                     + [None if t == 0 and s is None else e[t]
                        for e, s in zip(extras, self.state0[1:])] for t in range(T)]
        self.new = [[outs[t]] + [e[t + 1] for e in extras] for t in range(T)]

    def release_output(self) -> None:
        """Drop the views of the output buffer (after a backward): the output's memory is
        then freed with the output, not kept until the whole graph is freed."""
        self.out = None  # type: ignore[assignment]
        self.prev = self.new = self.common = []

    def rebind_output(self, out: Tensor) -> None:
        """Lay the views out again on ``out`` (the output, for a second backward through a
        retained graph)."""
        self.out = out
        self._bind_states(out)
        self.common = [self._common_args(t) for t in range(self.T)]

    def _common_args(self, t: int) -> list[Tensor]:
        return [*self.pres[t], *(s for s in self.prev[t] if s is not None),
                *self.step_masks[t], *self.p, *self.m_next[t]]

    def _kernels(self, build: Any, args: Sequence[Sequence[Tensor]], last_first: bool = False
                 ) -> list[Any]:
        """Each step's kernel bound to its arguments (one kernel per layout,
        :meth:`~memloss.models.paths.kernels.Kernel.bind`; ``last_first``: the last steps'
        layout is asked for first, the order a background compile takes them)."""
        r = self.run
        steps: list[Any] = [None] * self.T
        for lay, ts in (reversed(self.groups) if last_first else self.groups):
            k = build(r.cell, r.nonlinearity, lay, args[ts[0]])
            for t, step in zip(ts, k.bind([args[t] for t in ts])):
                steps[t] = step
        return steps

    def run_forward(self, train: bool = True) -> None:
        """The forward loop; ``train``: the kernels also keep what the backward reads."""
        r, T, H = self.run, self.T, self.H
        w_t = self.w_hh.t()
        if self.hm is not None:
            h0 = self.state0[0]
            assert h0 is not None
            m0 = self.rec[0]
            torch.mul(h0.unsqueeze(-2) if r.per_gate else h0, m0, out=self.hm[0])
            hm = self.hm.unbind(0)
        else:
            hm = [s[0] for s in self.prev]
        if train:
            self._keep_for_backward()
        self.common = [self._common_args(t) for t in range(T)]
        args = [self.common[t] + self.new[t] + ([hm[t + 1]] if self.hm is not None else [])
                + self.saves[t] for t in range(T)]
        steps = self._kernels(forward_kernel if train else inference_kernel, args)
        pre = self.pre_t
        if r.per_gate:  # one product per gate block, into its columns
            if not r.cell.joint:
                self._fill_bias()
            if H < BMM_BELOW:  # small blocks: one batched product over the gate blocks
                B, G = self.B, self.G
                pre_g = self.pre.view(T, B, G, H).permute(0, 2, 1, 3).unbind(0)
                hm_g = self.hm.transpose(1, 2).unbind(0)  # type: ignore[union-attr]
                w_g = self.w_hh.view(G, H, H).transpose(1, 2)
                for t in range(T):
                    pre_g[t].baddbmm_(hm_g[t], w_g)
                    steps[t]()
                return
            if use_onednn(self.B, H, H, self.w_hh):  # one packed block per gate
                w_p = [pack(self.w_hh[g * H:(g + 1) * H], self.B) for g in range(self.G)]
                for t in range(T):
                    for g, w_b in enumerate(w_p):
                        pre[t][:, g * H:(g + 1) * H].add_(packed_linear(hm[t][:, g], w_b))
                    steps[t]()
                return
            blocks = [(slice(g * H, (g + 1) * H), w_t[:, g * H:(g + 1) * H])
                      for g in range(self.G)]
            for t in range(T):
                for g, (cols, w_b) in enumerate(blocks):
                    pre[t][:, cols].addmm_(hm[t][:, g], w_b)
                steps[t]()
            return
        if r.cell.joint:
            if use_onednn(self.B, H, self.w_hh.shape[0], self.w_hh):
                w_p = pack(self.w_hh, self.B)
                for t in range(T):
                    pre[t].add_(packed_linear(hm[t], w_p))
                    steps[t]()
                return
            for t in range(T):  # the loop every step of every sequence runs: keep it bare
                pre[t].addmm_(hm[t], w_t)
                steps[t]()
            return
        b = self.b_rec
        for t in range(T):
            if b is None:
                torch.mm(hm[t], w_t, out=pre[t])
            else:
                torch.addmm(b, hm[t], w_t, out=pre[t])
            steps[t]()

    def _fill_bias(self) -> None:
        if self.b_rec is None:
            self.pre.zero_()
        else:
            self.pre.copy_(self.b_rec.expand_as(self.pre))

    def final_state_of(self, out: Tensor) -> tuple[Tensor, ...]:
        return (out[-1].clone(), *(b[self.T].clone() for b in self.extra))

    # --- backward -----------------------------------------------------------------------
    def run_backward(self, d_out: Tensor | None, d_final: Sequence[Tensor | None],
                     need_w: bool, need_b: bool) -> tuple[Tensor | None, ...]:
        r, T, B, H, G = self.run, self.T, self.B, self.H, self.G
        n = len(self.prev[0])
        zeros = self.out.new_zeros(B, H)
        D = d_out.contiguous().unbind(0) if d_out is not None else (zeros,) * T
        # gradients of the state: step t reads one set and writes the other
        dS = [[self.out.new_zeros(B, H) for _ in range(n)] for _ in range(2)]
        for buf, d in zip(dS[0], d_final):
            if d is not None:
                buf.copy_(d)
        if self.reads_pre:
            d_pre = torch.empty_like(self.pre)
            d_x = d_pre if r.cell.joint else torch.empty_like(self.pre)
        else:  # the backward reads no pre-activation: their buffers take their gradients
            d_pre, d_x = self.pre, self.xp
        dP = self.pre_t if d_pre is self.pre else d_pre.unbind(0)
        dX = dP if d_x is d_pre else self.xp_t if d_x is self.xp else d_x.unbind(0)
        # per-gate masks: [B, G, H] views of a [G, B, H] buffer, so that the batched product
        # writes its output contiguously (into a strided one torch's bmm took 23 against 16
        # us at H = 64, B = 32)
        dh_rec = (self.out.new_zeros(G, B, H).transpose(0, 1) if r.per_gate
                  else self.out.new_zeros(B, H))
        args = []
        for t in range(T):
            d_in, d_new = dS[(T - 1 - t) % 2], dS[(T - t) % 2]
            given = [d for d, s in zip(d_new, self.prev[t]) if s is not None]
            bufs = [dP[t]] if r.cell.joint else [dX[t], dP[t]]
            args.append(self.common[t] + self.new[t] + self.saves[t] + d_in
                        + [dh_rec, D[t]] + bufs + given)
        steps = self._kernels(backward_kernel, args, last_first=True)
        d_p = [torch.zeros_like(p) for p in self.p]
        w = self.w_hh
        if r.per_gate:  # one batched product over the gate blocks into [G, B, H] views
            dP_g = d_pre.view(T, B, G, H).permute(0, 2, 1, 3).unbind(0)
            w_g, dh_g = w.view(G, H, H), dh_rec.transpose(0, 1)
            w_p = ([pack(w_g[g].t(), B) for g in range(G)] if use_onednn(B, H, H, w)
                   else None)
            for t in range(T - 1, -1, -1):
                for acc, g in zip(d_p, steps[t]() or ()):
                    acc.add_(g)
                if w_p is None:
                    torch.bmm(dP_g[t], w_g, out=dh_g)
                else:  # one packed block per gate
                    for g, w_b in enumerate(w_p):
                        dh_g[g].copy_(packed_linear(dP_g[t][g], w_b))
        elif d_p:
            for t in range(T - 1, -1, -1):
                for acc, g in zip(d_p, steps[t]() or ()):
                    acc.add_(g)
                torch.mm(dP[t], w, out=dh_rec)
        elif use_onednn(B, w.shape[0], H, w):
            w_p = pack(w.t(), B)
            for t in range(T - 1, -1, -1):
                steps[t]()
                dh_rec.copy_(packed_linear(dP[t], w_p))
        else:
            for t in range(T - 1, -1, -1):
                steps[t]()
                torch.mm(dP[t], w, out=dh_rec)
        d_state = dS[T % 2]
        m0 = self.rec[0]
        if not r.next_rec or m0 is None:
            dh0 = d_state[0] + dh_rec
        elif r.per_gate:
            dh0 = d_state[0] + (dh_rec * m0).sum(-2)
        else:
            dh0 = d_state[0] + dh_rec * m0
        dW = self._weight_grad(d_pre) if need_w else None
        db = d_pre.sum((0, 1)) if need_b and self.b_rec is not None else None
        return (d_x, dW, db, *d_p, dh0, *d_state[1:])

    def _weight_grad(self, dR: Tensor) -> Tensor:
        """``dW_hh = sum_t dR_t^T h~_{t-1}`` as products over ``T x B`` (one per gate block
        under per-gate masks)."""
        T, B, GH = dR.shape
        H = self.H
        if self.run.per_gate:
            assert self.hm is not None
            dW = dR.new_empty(GH, H)
            for g in range(self.G):
                rows = slice(g * H, (g + 1) * H)
                mm(dR[:, :, rows].reshape(T * B, H).t(), self.hm[:T, :, g].reshape(T * B, H),
                   out=dW[rows])
            return dW
        # computed as (h~^T dR)^T and made contiguous: MKL runs that orientation 10-25%
        # faster here (H = 256-650, docs/performance.md), and a contiguous gradient keeps
        # AccumulateGrad from a strided addition
        if self.hm is not None:
            hm = self.hm[:T].reshape(T * B, H)
        else:
            h0 = self.state0[0]
            assert h0 is not None
            hm = torch.cat([h0.unsqueeze(0), self.out[:-1]]).reshape(T * B, H)
        return hm.t().mm(dR.reshape(T * B, GH)).t().contiguous()


class _Fused(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, run: _Run, xp: Tensor, w_hh: Tensor, b_rec: Tensor | None,
                n_p: int, *rest: Tensor | None) -> tuple[Tensor, ...]:
        seq = _Sequence(run, xp, w_hh, b_rec, rest[:n_p], rest[n_p:])
        seq.run_forward()
        final = seq.final_state_of(seq.out)
        # the output is another tensor on the same memory: the sequence keeps views of its
        # own buffer, not of the output, whose autograd node holds the sequence (views of the
        # output would make a cycle through C++ that Python's collector cannot see: no
        # training step's buffers would ever be freed). Saved as an output (no cycle) only
        # for autograd's check that nothing changed it in place before the backward.
        out = seq.out.detach()
        ctx.save_for_backward(out)
        ctx.seq = seq  # type: ignore[attr-defined]
        return (out, *final)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_out: Tensor | None, *d_final: Tensor | None
                 ) -> tuple[Tensor | None, ...]:
        seq: _Sequence = ctx.seq  # type: ignore[attr-defined]
        # where the output was changed in place since the forward, this raises (autograd
        # checks its saved tensors)
        out = ctx.saved_tensors[0]  # type: ignore[attr-defined]
        if seq.out is None:  # a second backward (retain_graph): the views are laid out again
            seq.rebind_output(out)
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
    xp = input_pre(cell, x, params, masks, linear=_input_product, gate_product=_gate_product)
    # a joint cell adds the recurrent products into the input product's own tensor: made
    # here by a product or a sum (whose backward does not read it), it is nobody else's; a
    # cell's ``project`` might keep its output for its backward, so that one is copied
    if cell.joint and (cell.project is not None or not xp.is_contiguous()):
        xp = xp.clone(memory_format=torch.contiguous_format)
    xp = xp.contiguous()
    w_hh, b_rec = recurrent_weight(params, masks), recurrent_bias(cell, params)
    p = step_params(cell, params)
    M = LayerMasks({k: v.contiguous() for k, v in masks.values.items()
                    if k not in ("input", "weight")}, masks.step, masks.per_gate)
    rec = M.values.get("recurrent")
    run = _Run(cell, nonlinearity, M, tuple(s for s in step_sites() if s in M.values),
               tuple(p), M.rec_per_gate, rec is not None)
    if not torch.is_grad_enabled():
        seq = _Sequence(run, xp, w_hh, b_rec, tuple(p.values()), state)
        seq.run_forward(train=False)
        return seq.out, seq.final_state_of(seq.out)
    out, *final = _Fused.apply(run, xp, w_hh, b_rec, len(p), *p.values(), *state)
    return out, tuple(final)
