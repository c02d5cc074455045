"""``gradient-flow``: how far back the training signal reaches.

For one batch and one mask set the net is unrolled step by step, keeping every state in
the autograd graph; ONE backward pass per loss then gives, for every layer and step, the
total derivatives ``dL/dh_t`` and ``dL/dc_t`` (every use of the state: the step's own
readout, the layer above at step t, the path ``h_t = o * tanh(c_t)`` inside the step, and
all later steps) and, under their own names, the parts carried through the recurrence
(the gradient reaching the state that step t+1 is given; 0 at the last step). Totals are
read at the per-layer tensors the net stacks into the state it returns (autograd
:class:`~torch.autograd.graph.GradientEdge` s), carried parts at the returned state.
Losses: ``last`` (the task loss at the last step only) and ``per-step`` (the sum of the
task loss evaluated at every step). Norms are Frobenius norms over the batch, averaged
over K mask samples in training mode, with a fitted log-slope. The spectral norm of the
step Jacobian ``dh_t/dh_{t-1}`` (LSTM: also of the full state map (h, c) -> (h, c)) is
estimated per sequence by power iteration on ``J^T J``; no dense Jacobian is formed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, ClassVar, Sequence

import torch
from torch import Tensor
from torch.autograd.graph import GradientEdge

from memloss.core import validate
from memloss.models import Masks, Net
from memloss.models.inference import DETERMINISTIC, OTHER_SCALING, TRAIN_MODE, mode_masks, \
    mode_scaling, net_dtype
from memloss.tasks import Batch

from .base import PROBES, Probe, ProbeResult, Quantity, checked, make_frame
from .data import modes_field, probe_context, split_field
from .fit import log_slope, step_factor
from .unroll import join_state, split_state, step_masks, with_state

__all__ = ["GradientFlow", "step_loss", "step_jacobian_norm", "layer_edges", "LOSSES",
           "GRADIENTS"]

LOSSES = ("last", "per-step")


def gradient_names(state: tuple[str, ...]) -> tuple[str, ...]:
    """The gradient quantities for a cell's state layout: the totals ``grad_<state>``, then
    the parts carried through the recurrence ``grad_<state>_carried``."""
    return tuple(f"grad_{n}" for n in state) + tuple(f"grad_{n}_carried" for n in state)


#: the gradient quantities of an LSTM (``gradient_names(("h", "c"))``)
GRADIENTS = gradient_names(("h", "c"))


def step_loss(task: Any, outputs: Tensor, batch: Batch, t: int) -> Tensor | None:
    """The task's loss of the prediction at step ``t`` (None when no target counts there).

    Sequence-label tasks (``targets`` ``[B]``) read their label from the last step of what
    they are given, so the output is cut to step ``t``; per-step tasks get step ``t`` of the
    targets and weights."""
    if batch.targets.dim() == 1:  # step t is the last step of the cut output
        loss = task.loss(outputs[:, t:t + 1], replace(batch, lengths=None))
    else:
        if batch.weights is not None and not bool(batch.weights[:, t].any()):
            return None
        w = None if batch.weights is None else batch.weights[:, t:t + 1]
        loss = task.loss(outputs[:, t:t + 1], Batch(batch.inputs[:, t:t + 1],
                                                    batch.targets[:, t:t + 1], w, batch.carry))
    return loss if bool(torch.isfinite(loss)) else None


def _detached(hx: object) -> object:
    """A state with every tensor detached (None stays None)."""
    if isinstance(hx, Tensor):
        return hx.detach()
    if isinstance(hx, (tuple, list)):
        return type(hx)(_detached(v) for v in hx)
    return hx


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
    v = _normalized(tuple(torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
                          for p in primals))
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


def layer_edges(state: Tensor, layers: int) -> list[GradientEdge | None]:
    """The per-layer tensors that a returned state ``[L, B, H]`` stacks, as gradient edges:
    the gradient at an edge sums every use of that layer's state, including its uses inside
    the step that made it (the layer above, ``h_t = o * tanh(c_t)``)."""
    node = state.grad_fn
    nexts = getattr(node, "next_functions", ())
    if node is None or type(node).__name__ != "StackBackward0" or len(nexts) != layers:
        raise ValueError(
            f"gradient-flow reads each layer's state where the net stacks it into the state it "
            f"returns, but this net's returned state comes from "
            f"{type(node).__name__ if node is not None else 'no autograd node'}; total "
            "derivatives cannot be read from it")
    return [None if fn is None else GradientEdge(fn, nr) for fn, nr in nexts]


def _norms(grads: Sequence[Tensor | None], like: Tensor) -> Tensor:
    """``[L]`` Frobenius norms over ``[B, H]`` of per-layer gradients (None = 0)."""
    return torch.stack([like.new_zeros(()) if g is None else g.norm() for g in grads])


@PROBES.register("gradient-flow", "total ||dL/dh_t||, ||dL/dc_t|| per layer and step and the parts "
                 "carried through the recurrence, from one backward pass (last-step and "
                 "per-step losses), log-slope; step-Jacobian spectral norm")
@dataclass(frozen=True)
class GradientFlow(Probe):
    """Args: ``samples`` training-mode mask draws (K); ``power_iters`` power-iteration steps;
    ``jacobian_stride`` estimate the Jacobian norm every that many steps (0: skip it);
    ``jacobian_samples`` of the K mask draws, how many also get Jacobian norms;
    ``jvp`` how Jacobian-vector products are taken (see :func:`step_jacobian_norm`)."""

    name: ClassVar[str] = "gradient-flow"
    title: ClassVar[str] = "Gradient flow back through time"
    rank: ClassVar[int] = 40
    quantities: ClassVar[dict[str, Quantity]] = {
        "grad_h": Quantity("gradient norm ||dL/dh_t||", "Frobenius norm"),
        "grad_c": Quantity("gradient norm ||dL/dc_t||", "Frobenius norm"),
        "grad_h_carried": Quantity("part of ||dL/dh_t|| carried through the recurrence",
                                   "Frobenius norm"),
        "grad_c_carried": Quantity("part of ||dL/dc_t|| carried through the recurrence",
                                   "Frobenius norm"),
        "grad_h_log_slope": Quantity("slope of ln ||dL/dh_t|| over t", "per step"),
        "grad_c_log_slope": Quantity("slope of ln ||dL/dc_t|| over t", "per step"),
        "grad_h_carried_log_slope": Quantity("slope of ln of the carried ||dL/dh_t|| over t",
                                             "per step"),
        "grad_c_carried_log_slope": Quantity("slope of ln of the carried ||dL/dc_t|| over t",
                                             "per step"),
        "jacobian_h": Quantity("spectral norm of dh_t/dh_(t-1)", "spectral norm"),
        "jacobian_state": Quantity("spectral norm of the step map of the whole state "
                                   "(e.g. d(h,c)_t/d(h,c)_(t-1))", "spectral norm"),
    }
    samples: int = checked(4, validate.integer)
    batch_size: int = checked(32, validate.integer)
    split: str = checked("test", split_field)
    power_iters: int = checked(20, validate.integer)
    jacobian_stride: int = checked(1, validate.integer, minimum=0)
    jacobian_samples: int = checked(1, validate.integer)
    jvp: str = checked("autograd", validate.choice, ("autograd", "func"))
    modes: tuple[str, ...] = checked((DETERMINISTIC, TRAIN_MODE), modes_field, DETERMINISTIC,
                                     OTHER_SCALING, TRAIN_MODE)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        return {"samples": 2, "batch_size": 8, "power_iters": 2, "jacobian_stride": 2}

    def _gradients(self, view: Net, task: Any, batch: Batch, masks: Masks
                   ) -> tuple[dict[tuple[str, str], Tensor], list[object]]:
        """``{(loss, quantity): [T, L]}`` for :func:`gradient_names` of the cell's state and
        the detached state each step was given."""
        x = batch.inputs
        T = x.shape[1]
        L = view.config.num_layers
        parts = view.rnn.cell.state
        hx: object = None
        carried: dict[str, list[Tensor]] = {n: [] for n in parts}
        edges: dict[str, list[GradientEdge | None]] = {n: [] for n in parts}
        outs, before = [], []
        with torch.enable_grad():
            for t in range(T):
                before.append(_detached(hx))
                out, hx = view(x[:, t:t + 1], hx, masks=step_masks(view, masks, t))
                for part, s in split_state(view, hx).items():
                    carried[part].append(s)
                    edges[part] += layer_edges(s, L)
                outs.append(out)
            out = torch.cat(outs, dim=1)
            grads: dict[tuple[str, str], Tensor] = {}
            for loss_name in LOSSES:
                loss = self._loss(task, out, batch, loss_name)
                if loss is None:
                    continue
                inputs: list[Any] = []
                for part in parts:
                    inputs += [e for e in edges[part] if e is not None] + carried[part]
                got = iter(torch.autograd.grad(loss, inputs, retain_graph=True,
                                               allow_unused=True))
                for part in parts:
                    total = [None if e is None else next(got) for e in edges[part]]
                    carry = [next(got) for _ in carried[part]]
                    like = carried[part][0]
                    grads[(loss_name, f"grad_{part}")] = torch.stack([
                        _norms(total[t * L:(t + 1) * L], like) for t in range(T)])
                    grads[(loss_name, f"grad_{part}_carried")] = torch.stack([
                        torch.zeros(L, dtype=like.dtype, device=like.device) if g is None
                        else g.norm(dim=(1, 2)) for g in carry])
        return grads, before

    @staticmethod
    def _loss(task: Any, out: Tensor, batch: Batch, loss_name: str) -> Tensor | None:
        T = out.shape[1]
        if loss_name == "last":
            return step_loss(task, out, batch, T - 1)
        parts = [p for t in range(T) if (p := step_loss(task, out, batch, t)) is not None]
        return torch.stack(parts).sum() if parts else None

    def _jacobians(self, view: Net, x: Tensor, masks: Masks, before: list[object],
                   gen: torch.Generator) -> dict[str, dict[int, Tensor]]:
        """``jacobian_h`` (h to h, every other state held) and, for a cell with several
        states, ``jacobian_state`` (the map of the whole own state)."""
        names = view.rnn.cell.state
        out: dict[str, dict[int, Tensor]] = {"jacobian_h": {}}
        if len(names) > 1:
            out["jacobian_state"] = {}
        T = x.shape[1]
        L, H = view.config.num_layers, view.config.hidden_size
        for t in range(0, T, self.jacobian_stride):
            x_t, mt = x[:, t:t + 1], step_masks(view, masks, t)
            hx = before[t]
            if hx is None:  # the zero state the net starts from
                zeros = torch.zeros((L, x.shape[0], H), dtype=net_dtype(view), device=x.device)
                hx = join_state(view, {n: zeros.clone() for n in names})
            start = split_state(view, hx)

            def f_h(h: Tensor, x_t: Tensor = x_t, mt: Masks = mt, hx: object = hx
                    ) -> tuple[Tensor]:
                return (split_state(view, view(x_t, with_state(view, hx, {"h": h}),
                                               masks=mt)[1])["h"],)

            out["jacobian_h"][t] = step_jacobian_norm(f_h, (start["h"],), self.power_iters, gen,
                                                      self.jvp)
            if len(names) > 1:
                def f_s(*vs: Tensor, x_t: Tensor = x_t, mt: Masks = mt, hx: object = hx
                        ) -> tuple[Tensor, ...]:
                    new = split_state(view, view(x_t, with_state(view, hx, dict(zip(names, vs))),
                                                 masks=mt)[1])
                    return tuple(new[n] for n in names)

                out["jacobian_state"][t] = step_jacobian_norm(
                    f_s, tuple(start[n] for n in names), self.power_iters, gen, self.jvp)
        return out

    def __call__(self, net: Net, task: Any, *, generator: torch.Generator | None = None
                 ) -> ProbeResult:
        gen, device, view, batch = probe_context(net, task, self.split, self.batch_size, generator,
                                                 self.name)
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
