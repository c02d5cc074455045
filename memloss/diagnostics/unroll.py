"""Drive a Net one step at a time with explicit per-step masks and record every state.

The probes need ``h_t`` and ``c_t`` at every step, so they call the net on one time step
at a time, passing the state back in and slicing each per-step mask at ``t`` (per-sequence
and per-forward masks are passed unchanged). This gives exactly the full-sequence forward,
costs time linear in T, and needs no change to the models. The one exception is Krueger's
``output-zoneout`` (the ``output_gate`` site), whose previous output gate lives inside the
time loop and is not carried across calls; the probes log a warning for it.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch
from torch import Tensor

from memloss.models import Masks, Net

__all__ = ["Trace", "step_masks", "reference_view", "unroll", "readout", "split_state",
           "join_state"]

log = logging.getLogger(__name__)
_warned: set[str] = set()


@dataclass(frozen=True)
class Trace:
    """What :func:`unroll` records. ``h[t]``/``c[t]``: ``[L, B, H]`` state after step ``t``
    (``c`` is None for GRU/RNN); ``outputs``: ``[B, T, C]`` the net's outputs."""

    outputs: Tensor
    h: list[Tensor]
    c: list[Tensor] | None

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


def split_state(net: Net, hx: object) -> tuple[Tensor, Tensor | None]:
    if net.rnn.cell.has_cell:
        h, c = hx  # type: ignore[misc]
        return h, c
    return hx, None  # type: ignore[return-value]


def join_state(net: Net, h: Tensor, c: Tensor | None) -> object:
    return (h, c) if net.rnn.cell.has_cell else h


def _warn_unsupported(net: Net) -> None:
    scheme = str(net.config.scheme)
    if scheme not in _warned and any(k.endswith(".output_gate") for k in net.mask_plan().keys()):
        _warned.add(scheme)
        log.warning("scheme %r zones out the output gate; its previous gate value is not "
                    "carried across the step-wise unroll, so probe states are approximate",
                    net.config.scheme)


def unroll(net: Net, inputs: Tensor, masks: Masks, hx: object = None, *, start: int = 0
           ) -> Trace:
    """Run ``net`` over ``inputs`` ([B, T] ids or [B, T, F]) step by step with ``masks``
    (made for the full length; step ``t`` of ``inputs`` uses mask step ``start + t``)."""
    _warn_unsupported(net)
    T = inputs.shape[1]
    outs, hs, cs = [], [], []
    for t in range(T):
        out, hx = net(inputs[:, t:t + 1], hx, masks=step_masks(net, masks, start + t))
        h, c = split_state(net, hx)
        outs.append(out)
        hs.append(h)
        if c is not None:
            cs.append(c)
    return Trace(torch.cat(outs, dim=1), hs, cs if net.rnn.cell.has_cell else None)


def readout(net: Net, h: Tensor, masks_t: Masks) -> Tensor:
    """The net's output ``[B, C]`` at one step computed from that step's state ``h``
    ([L, B, H]): the last layer's h, the ``output`` site, then the head. Lets gradients
    taken at the state include the step's own readout."""
    y = h[-1]
    m = masks_t.get("output")
    if m is not None:
        y = y * (m[0] if m.dim() == 3 else m)
    return net.head(y) if net.head is not None else y
