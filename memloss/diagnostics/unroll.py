"""Drive a Net one step at a time with explicit per-step masks and record every state.

The probes need ``h_t`` and ``c_t`` at every step, so they call the net on one time step
at a time, passing back in whatever state the net returned (``h``, ``c`` and anything else
it carries) and slicing each per-step mask at ``t`` (per-sequence and per-forward masks are
passed unchanged). This gives exactly the full-sequence forward, costs time linear in T
and needs no change to the models, as long as the state the net returns is all it carries
from one step to the next. :func:`check_stepwise` measures that on every probed net and
refuses one where it does not hold (for example a net that drops Krueger's output gate,
which ``output-zoneout`` carries in the LSTM state ``(h, c, o)``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from memloss.models import Masks, Net
from memloss.models.inference import net_dtype

__all__ = ["Trace", "step_masks", "reference_view", "unroll", "readout", "split_state",
           "join_state", "with_state", "check_stepwise", "StepwiseError"]

State = Any


class StepwiseError(ValueError):
    """The net cannot be run one step at a time: its returned state is not all it carries."""


@dataclass(frozen=True)
class Trace:
    """What :func:`unroll` records. ``h[t]``/``c[t]``: ``[L, B, H]`` state after step ``t``
    (``c`` is None for GRU/RNN); ``states[t]``: the whole state the net returned after step
    ``t`` (what step ``t+1`` was given); ``outputs``: ``[B, T, C]`` the net's outputs."""

    outputs: Tensor
    h: list[Tensor]
    c: list[Tensor] | None
    states: list[State]

    def stacked(self) -> tuple[Tensor, Tensor | None]:
        """States as ``[T, L, B, H]`` tensors (h, c)."""
        return torch.stack(self.h), (None if self.c is None else torch.stack(self.c))


def step_masks(net: Net, masks: Masks, t: int) -> Masks:
    """The masks of step ``t`` as a valid T=1 mask set (per-step masks sliced)."""
    plan = net.mask_plan()
    out: Masks = {}
    for key, m in masks.items():
        e = plan.get(key)
        if e is not None and e.spec.sampling == "step" and m.dim() > 0:
            out[key] = m[t:t + 1]
        else:
            out[key] = m
    return out


def reference_view(net: Net) -> Net:
    """The net itself when it runs the reference path, else a copy that does (the step-wise
    probes use forward-mode AD and double passes that fused/native kernels may lack)."""
    if net.rnn.path == "reference":
        return net
    view = copy.deepcopy(net)
    view.rnn.path = "reference"
    return view


def split_state(net: Net, hx: State) -> tuple[Tensor, Tensor | None]:
    """``(h, c)`` of a state the net returned (``c`` None for GRU/RNN); any further parts
    of the state are left out (:func:`with_state` keeps them)."""
    if isinstance(hx, (tuple, list)):
        return hx[0], (hx[1] if net.rnn.cell.has_cell else None)
    return hx, None


def join_state(net: Net, h: Tensor, c: Tensor | None) -> State:
    """A state made of ``h`` and ``c`` only (the form of a state at the start)."""
    return (h, c) if net.rnn.cell.has_cell else h


def with_state(net: Net, hx: State, h: Tensor, c: Tensor | None) -> State:
    """``hx`` with its ``h`` and ``c`` replaced, every other part it carries kept."""
    if isinstance(hx, (tuple, list)):
        parts = list(hx)
        parts[0] = h
        if net.rnn.cell.has_cell:
            parts[1] = c
        return type(hx)(parts) if isinstance(hx, tuple) else parts
    return join_state(net, h, c)


def unroll(net: Net, inputs: Tensor, masks: Masks, hx: State = None, *, start: int = 0
           ) -> Trace:
    """Run ``net`` over ``inputs`` ([B, T] ids or [B, T, F]) step by step with ``masks``
    (made for the full length; step ``t`` of ``inputs`` uses mask step ``start + t``),
    passing the state the net returns back in at the next step."""
    T = inputs.shape[1]
    outs, hs, cs, states = [], [], [], []
    for t in range(T):
        out, hx = net(inputs[:, t:t + 1], hx, masks=step_masks(net, masks, start + t))
        h, c = split_state(net, hx)
        outs.append(out)
        hs.append(h)
        states.append(hx)
        if c is not None:
            cs.append(c)
    return Trace(torch.cat(outs, dim=1), hs, cs if net.rnn.cell.has_cell else None, states)


def readout(net: Net, h: Tensor, masks_t: Masks) -> Tensor:
    """The net's output ``[B, C]`` at one step computed from that step's state ``h``
    ([L, B, H]): the last layer's h, the ``output`` site, then the head."""
    y = h[-1]
    m = masks_t.get("output")
    if m is not None:
        y = y * (m[0] if m.dim() == 3 else m)
    return net.head(y) if net.head is not None else y


def _check_masks(net: Net, T: int, B: int) -> Masks:
    """A training-mode mask set in which every zoneout mask is a fair coin, so that any
    state a zoneout keeps is used at about half the steps whatever the net's rates."""
    g = torch.Generator().manual_seed(0)
    dtype = net_dtype(net)
    device = next(net.parameters()).device
    plan = net.mask_plan()
    masks = plan.sample(T, B, generator=g, device=device, dtype=dtype)
    for e in plan.entries:
        if e.spec.kind == "zoneout":
            masks[e.key] = torch.bernoulli(torch.full(e.full_shape(T, B), 0.5, dtype=dtype),
                                           generator=g).to(device)
    return masks


@torch.no_grad()
def check_stepwise(net: Net, inputs: Tensor, owner: str, *, steps: int = 4) -> None:
    """Refuse (:class:`StepwiseError`) a net whose step-by-step run (:func:`unroll`) does not
    reproduce its full-sequence forward, measured on the first two sequences and ``steps``
    steps of ``inputs`` under training-mode masks with every zoneout mask a fair coin."""
    x = inputs[:2, :steps]
    B, T = int(x.shape[0]), int(x.shape[1])
    if T < 2:
        return
    masks = _check_masks(net, T, B)
    full, h_n = net(x, masks=masks)
    trace = unroll(net, x, masks)
    tol = 1e-9 if net_dtype(net) == torch.float64 else 1e-4
    gap = float((trace.outputs - full).abs().max())
    h_last, _ = split_state(net, h_n)
    gap = max(gap, float((trace.h[-1] - h_last).abs().max()))
    if gap <= tol * (1.0 + float(full.abs().max())):
        return
    spec = net.config.scheme.spec  # type: ignore[union-attr]
    if any(k.endswith(".output_gate") for k in net.mask_plan().keys()):
        why = ("it zones out the output gate (Krueger 3.3), and the previous output gate is not "
               "part of the recurrent state this net returns, so a step-by-step run never zones "
               "it out and measures another model")
    else:
        why = ("part of what the net carries from one step to the next is not in the state it "
               "returns")
    raise StepwiseError(
        f"{owner}: cannot probe scheme {spec!r} step by step: {why} (outputs differ from the "
        f"full forward by up to {gap:.3g}). Run the whole-sequence probes on it "
        "(test-time-scaling, uncertainty, mask-audit), or a memloss whose recurrent state "
        "carries that value.")
