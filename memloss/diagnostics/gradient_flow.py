"""``gradient-flow``: how far back the training signal reaches.

For one batch and one mask set the net is unrolled step by step, keeping every state in
the autograd graph; ONE backward pass per loss then gives ``dL/dh_t`` and ``dL/dc_t`` for
every ``t`` (``torch.autograd.grad`` with respect to the recorded states). ``dL/dh_t`` is the
total derivative for the last layer's state (its own readout at t plus everything after);
``dL/dc_t`` (and ``dL/dh_t`` of lower layers) is the gradient reaching the state carried to
step t+1. Losses: ``last`` (the task loss at the last step only) and ``per-step`` (the sum of
the task loss evaluated at every step). Norms are Frobenius norms over the batch, averaged
over K mask samples in training mode, with a fitted log-slope. The spectral norm of the
step Jacobian ``dh_t/dh_{t-1}`` (LSTM: also of the full state map (h, c) -> (h, c)) is
estimated per sequence by power iteration on ``J^T J`` with ``torch.func.jvp``/``vjp``;
no dense Jacobian is formed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

from memloss.core import validate
from memloss.models import Masks, Net
from memloss.tasks import Batch

from .base import PROBES, Probe, ProbeResult, make_frame
from .data import check_split, probe_context
from .fit import log_slope, step_factor
from memloss.models.inference import DETERMINISTIC, OTHER_SCALING, TRAIN_MODE, check_modes, mode_masks, mode_scaling
from .unroll import readout, split_state, step_masks

__all__ = ["GradientFlow", "step_loss", "step_jacobian_norm", "LOSSES"]

LOSSES = ("last", "per-step")


def step_loss(task: Any, outputs: Tensor, batch: Batch, t: int) -> Tensor | None:
    """The task's loss of the prediction at step ``t`` (None when no target counts there).

    Sequence-label tasks (``targets`` ``[B]``) read their label from the last step of what
    they are given, so the output is cut to step ``t``; per-step tasks get step ``t`` of the
    targets and weights."""
    if batch.targets.dim() == 1:
        loss = task.loss(outputs[:, t:t + 1], batch)
    else:
        if batch.weights is not None and not bool(batch.weights[:, t].any()):
            return None
        w = None if batch.weights is None else batch.weights[:, t:t + 1]
        loss = task.loss(outputs[:, t:t + 1], Batch(batch.inputs[:, t:t + 1],
                                                    batch.targets[:, t:t + 1], w, batch.carry))
    return loss if bool(torch.isfinite(loss)) else None


def _batch_norm(vs: tuple[Tensor, ...]) -> Tensor:
    """Per-sequence norm of a state tuple of ``[L, B, H]`` tensors -> ``[B]``."""
    return torch.sqrt(sum((v * v).sum(dim=(0, 2)) for v in vs))  # type: ignore[arg-type]


def _normalized(vs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    n = _batch_norm(vs).clamp_min(1e-30)
    return tuple(x / n[None, :, None] for x in vs)


def step_jacobian_norm(f: Callable[..., tuple[Tensor, ...]], primals: tuple[Tensor, ...],
                       iters: int, generator: torch.Generator, method: str = "autograd"
                       ) -> Tensor:
    """Largest singular value of the Jacobian of ``f`` at ``primals``, per sequence (``[B]``).

    ``f`` maps a state tuple of ``[L, B, H]`` tensors to a state tuple and must treat the
    sequences independently (the Jacobian is block diagonal over B). Power iteration on
    ``J^T J``: one Jacobian-vector product (jvp) and one vector-Jacobian product (vjp) per
    iteration, never a dense Jacobian. ``method="func"`` uses ``torch.func.jvp``/``vjp``
    (re-runs ``f`` for every jvp); ``"autograd"`` records ``f`` once and gets the jvp by the
    double-vjp trick (``J v = d/du <J^T u, v>``), which is much faster for a Python step."""
    v = _normalized(tuple(torch.randn(p.shape, generator=generator).to(p) for p in primals))
    if method == "func":
        _, vjp_fn = torch.func.vjp(f, *primals)
        for _ in range(iters):
            v = _normalized(vjp_fn(torch.func.jvp(f, primals, v)[1]))
        return _batch_norm(torch.func.jvp(f, primals, v)[1]).detach()
    if method != "autograd":
        raise ValueError(f"step_jacobian_norm: method must be 'autograd' or 'func', got {method!r}")
    with torch.enable_grad():
        xs = tuple(p.detach().requires_grad_() for p in primals)
        ys = f(*xs)
        us = tuple(torch.zeros_like(y).requires_grad_() for y in ys)
        jt_u = torch.autograd.grad(ys, xs, us, create_graph=True)  # J^T u, linear in u

        def jvp(vs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
            return torch.autograd.grad(jt_u, us, vs, retain_graph=True)

        for _ in range(iters):
            v = _normalized(torch.autograd.grad(ys, xs, jvp(v), retain_graph=True))
        return _batch_norm(jvp(v)).detach()


@PROBES.register("gradient-flow", "||dL/dh_t||, ||dL/dc_t|| for every t from one backward pass "
                 "(last-step and per-step losses), log-slope; step-Jacobian spectral norm")
@dataclass(frozen=True)
class GradientFlow(Probe):
    """Args: ``samples`` training-mode mask draws (K); ``power_iters`` power-iteration steps;
    ``jacobian_stride`` estimate the Jacobian norm every that many steps (0: skip it);
    ``jacobian_samples`` of the K mask draws, how many also get Jacobian norms;
    ``jvp`` how Jacobian-vector products are taken (see :func:`step_jacobian_norm`)."""

    name: ClassVar[str] = "gradient-flow"
    samples: int = 4
    batch_size: int = 32
    split: str = "test"
    power_iters: int = 20
    jacobian_stride: int = 1
    jacobian_samples: int = 1
    jvp: str = "autograd"
    modes: tuple[str, ...] = (DETERMINISTIC, TRAIN_MODE)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        return {"samples": 2, "batch_size": 8, "power_iters": 2, "jacobian_stride": 2}

    def __post_init__(self) -> None:
        validate.integer(self.name, "samples", self.samples)
        validate.integer(self.name, "batch_size", self.batch_size)
        validate.integer(self.name, "power_iters", self.power_iters)
        validate.integer(self.name, "jacobian_stride", self.jacobian_stride, minimum=0)
        validate.integer(self.name, "jacobian_samples", self.jacobian_samples)
        check_split(self.name, self.split)
        check_modes(self.name, self.modes, (DETERMINISTIC, OTHER_SCALING, TRAIN_MODE))
        if self.jvp not in ("autograd", "func"):
            raise ValueError(f"{self.name}: jvp must be 'autograd' or 'func', got {self.jvp!r}")

    def _gradients(self, view: Net, task: Any, batch: Batch, masks: Masks
                   ) -> tuple[dict[tuple[str, str], Tensor], list[tuple[Tensor, Tensor | None]]]:
        """``{(loss, "grad_h"|"grad_c"): [T, L]}`` and the detached states before each step."""
        x = batch.inputs
        B, T = x.shape[:2]
        L, H = view.config.num_layers, view.config.hidden_size
        has_c = view.rnn.cell.has_cell
        dtype = next(view.parameters()).dtype
        zeros = torch.zeros((L, B, H), dtype=dtype, device=x.device)
        hx: object = (zeros.clone().requires_grad_(), zeros.clone().requires_grad_()) if has_c \
            else zeros.clone().requires_grad_()
        hs, cs, outs, before = [], [], [], []
        with torch.enable_grad():
            for t in range(T):
                h_prev, c_prev = split_state(view, hx)
                before.append((h_prev.detach(), None if c_prev is None else c_prev.detach()))
                mt = step_masks(view, masks, t)
                _, hx = view(x[:, t:t + 1], hx, masks=mt)
                h, c = split_state(view, hx)
                hs.append(h)
                if c is not None:
                    cs.append(c)
                outs.append(readout(view, h, mt))
            out = torch.stack(outs, dim=1)
            grads: dict[tuple[str, str], Tensor] = {}
            for loss_name in LOSSES:
                if loss_name == "last":
                    loss = step_loss(task, out, batch, T - 1)
                else:
                    parts = [p for t in range(T) if (p := step_loss(task, out, batch, t)) is not None]
                    loss = torch.stack(parts).sum() if parts else None
                if loss is None:
                    continue
                g = torch.autograd.grad(loss, hs + cs, retain_graph=True, allow_unused=True)
                for q, gs, states in (("grad_h", g[:T], hs), ("grad_c", g[T:], cs)):
                    if not states:
                        continue
                    grads[(loss_name, q)] = torch.stack([
                        (torch.zeros_like(s) if gi is None else gi).norm(dim=(1, 2))
                        for gi, s in zip(gs, states)])
        return grads, before

    def _jacobians(self, view: Net, x: Tensor, masks: Masks,
                   before: list[tuple[Tensor, Tensor | None]], gen: torch.Generator
                   ) -> dict[str, dict[int, Tensor]]:
        has_c = view.rnn.cell.has_cell
        out: dict[str, dict[int, Tensor]] = {"jacobian_h": {}}
        if has_c:
            out["jacobian_state"] = {}
        T = x.shape[1]
        for t in range(0, T, self.jacobian_stride):
            x_t, mt = x[:, t:t + 1], step_masks(view, masks, t)
            h0, c0 = before[t]

            def f_h(h: Tensor, x_t: Tensor = x_t, mt: Masks = mt, c0: Tensor | None = c0
                    ) -> tuple[Tensor]:
                return (split_state(view, view(x_t, (h, c0) if has_c else h, masks=mt)[1])[0],)

            out["jacobian_h"][t] = step_jacobian_norm(f_h, (h0,), self.power_iters, gen, self.jvp)
            if has_c:
                def f_s(h: Tensor, c: Tensor, x_t: Tensor = x_t, mt: Masks = mt
                        ) -> tuple[Tensor, Tensor]:
                    return split_state(view, view(x_t, (h, c), masks=mt)[1])  # type: ignore

                out["jacobian_state"][t] = step_jacobian_norm(f_s, (h0, c0), self.power_iters, gen, self.jvp)
        return out

    def __call__(self, net: Net, task: Any, *, generator: torch.Generator | None = None
                 ) -> ProbeResult:
        gen, device, view, batch = probe_context(net, task, self.split, self.batch_size, generator)
        B, T = batch.inputs.shape[:2]
        rows: list[dict[str, Any]] = []
        summary: dict[str, Any] = {"length": T, "log_slope": {}, "per_step_factor": {},
                                   "jacobian_mean": {}}
        for mode in self.modes:
            sc = mode_scaling(net, mode)
            draws = self.samples if mode == TRAIN_MODE else 1
            grad_runs, jac_runs = [], []
            for _ in range(draws):
                masks = mode_masks(net, mode, T, B, generator=gen, device=device)
                grads, before = self._gradients(view, task, batch, masks)
                grad_runs.append(grads)
                if self.jacobian_stride and len(jac_runs) < self.jacobian_samples:
                    jac_runs.append(self._jacobians(view, batch.inputs, masks, before, gen))
            summary["log_slope"][mode], summary["per_step_factor"][mode] = {}, {}
            for key in grad_runs[0]:
                loss_name, q = key
                stack = torch.stack([g[key] for g in grad_runs]).detach()
                mean, std = stack.mean(0), stack.std(0, correction=0)
                for t in range(T):
                    for layer in range(mean.shape[1]):
                        rows.append(dict(mode=mode, scaling=sc, quantity=q, loss=loss_name,
                                         layer=layer, t=t, value=float(mean[t, layer]),
                                         std=float(std[t, layer])))
                slope = log_slope(list(range(T)), mean[:, -1].tolist())
                rows.append(dict(mode=mode, scaling=sc, quantity=f"{q}_log_slope",
                                 loss=loss_name, layer=mean.shape[1] - 1, value=slope))
                summary["log_slope"][mode][f"{loss_name}/{q}"] = slope
                summary["per_step_factor"][mode][f"{loss_name}/{q}"] = step_factor(slope)
            summary["jacobian_mean"][mode] = {}
            for q in (jac_runs[0] if jac_runs else {}):
                total = []
                for t in jac_runs[0][q]:
                    per_draw = torch.stack([j[q][t].mean() for j in jac_runs]).detach()
                    total.append(float(per_draw.mean()))
                    rows.append(dict(mode=mode, scaling=sc, quantity=q, t=t,
                                     value=float(per_draw.mean()),
                                     std=float(per_draw.std(correction=0))))
                summary["jacobian_mean"][mode][q] = sum(total) / len(total)
        frame = make_frame(self.name, net, rows, extra_columns=("loss", "std"))
        return ProbeResult(frame, summary)
