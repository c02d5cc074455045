"""Drive a Net one step at a time with explicit per-step masks and record every state.

The probes need the state at every step, so they call the net on one time step at a time,
passing back in whatever state the net returned (the cell's own states, in the layout its
``CellSpec.state`` declares, and anything its sites carry) and slicing each per-step mask
at ``t`` (per-sequence and per-forward masks are passed unchanged). This gives exactly the full-sequence forward, costs time linear in T
and needs no change to the models, as long as the state the net returns is all it carries
from one step to the next. :func:`check_stepwise` measures that on every probed net and
refuses one where it does not hold (for example a net that drops Krueger's output gate,
which ``output-zoneout`` carries in the LSTM state ``(h, c, o)``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

from memloss.models import Masks, Net
from memloss.models.inference import net_dtype
from memloss.models.paths.reference import reference_layer

from .base import NotApplicable

__all__ = ["Trace", "step_masks", "reference_view", "unroll", "readout", "split_state",
           "join_state", "with_state", "check_stepwise", "StepwiseError", "record_activations"]

State = Any


class StepwiseError(NotApplicable):
    """The net cannot be run one step at a time: its returned state is not all it carries."""


@dataclass(frozen=True)
class Trace:
    """What :func:`unroll` records. ``parts[name][t]``: ``[L, B, H]``, the cell's own state
    ``name`` after step ``t``, for every name of the cell's state layout (``CellSpec.state``:
    ``h`` first, then e.g. the LSTM's ``c``); ``states[t]``: the whole state the net returned
    after step ``t`` (what step ``t+1`` was given); ``outputs``: ``[B, T, C]`` the outputs."""

    outputs: Tensor
    parts: dict[str, list[Tensor]]
    states: list[State]

    @property
    def h(self) -> list[Tensor]:
        return self.parts["h"]

    def stacked(self) -> dict[str, Tensor]:
        """Every own state as a ``[T, L, B, H]`` tensor, by name."""
        return {name: torch.stack(v) for name, v in self.parts.items()}


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


def split_state(net: Net, hx: State) -> dict[str, Tensor]:
    """The cell's own states in a state the net returned, by name in the cell's layout
    (``CellSpec.state``); states that sites carry (e.g. Krueger's output gate) are left
    out (:func:`with_state` keeps them)."""
    names = net.rnn.cell.state
    parts = tuple(hx) if isinstance(hx, (tuple, list)) else (hx,)
    return dict(zip(names, parts[:len(names)]))


def join_state(net: Net, parts: Mapping[str, Tensor]) -> State:
    """A state made of the cell's own states only (the form of a state at the start), in
    the net's ``hx`` form: one tensor for a one-state cell, else a tuple in layout order."""
    names = net.rnn.cell.state
    missing = [n for n in names if n not in parts]
    if missing:
        raise ValueError(f"a {net.rnn.cell.name} state needs {list(names)}, missing {missing}")
    return tuple(parts[n] for n in names) if len(names) > 1 else parts[names[0]]


def with_state(net: Net, hx: State, parts: Mapping[str, Tensor]) -> State:
    """``hx`` with the named own states replaced, every other part it carries kept."""
    if not isinstance(hx, (tuple, list)):
        return join_state(net, {**split_state(net, hx), **parts})
    names = net.rnn.cell.state
    new = list(hx)
    for name, v in parts.items():
        new[names.index(name)] = v
    return type(hx)(new) if isinstance(hx, tuple) else new


def unroll(net: Net, inputs: Tensor, masks: Masks, hx: State = None, *, start: int = 0
           ) -> Trace:
    """Run ``net`` over ``inputs`` ([B, T] ids or [B, T, F]) step by step with ``masks``
    (made for the full length; step ``t`` of ``inputs`` uses mask step ``start + t``),
    passing the state the net returns back in at the next step."""
    T = inputs.shape[1]
    outs, states = [], []
    parts: dict[str, list[Tensor]] = {name: [] for name in net.rnn.cell.state}
    for t in range(T):
        out, hx = net(inputs[:, t:t + 1], hx, masks=step_masks(net, masks, start + t))
        for name, v in split_state(net, hx).items():
            parts[name].append(v)
        outs.append(out)
        states.append(hx)
    return Trace(torch.cat(outs, dim=1), parts, states)


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
    h_last = split_state(net, h_n)["h"]
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


def record_activations(net: Net, inputs: Tensor, masks: Masks) -> list[dict[str, Tensor]]:
    """Per layer, every activation the cell's step reports, ``{name: [T, B, H]}`` (names as
    the cell declares them, ``CellSpec.activations``): each layer runs the reference loop
    (:func:`memloss.models.paths.reference.reference_layer`) from a zero state on the layer
    below's outputs, with ``masks`` (a full mask set for ``inputs``' length, sampled or
    expected), and its step records into a recorder. No equation of any cell is written
    here. Refuses (:class:`~memloss.diagnostics.base.NotApplicable`) a cell whose step
    records other names than it declares."""
    rnn, cell = net.rnn, net.rnn.cell
    declared = [a.name for a in cell.activations]
    if not declared:
        raise NotApplicable(f"cell {cell.name!r} declares no activations (CellSpec.activations), "
                            "so no probe can read its gates; declare them and record them in "
                            "its step")
    if net.embedding is not None:
        x = net.embedding(inputs)
        me = masks.get("embedding")
        if me is not None:
            x = x * (me if me.dim() == 0 else torch.gather(me, 1, inputs).unsqueeze(-1))
    else:
        x = inputs
    x = x.transpose(0, 1)
    B = x.shape[1]
    plan = rnn.mask_plan()
    carried = len(rnn.state_names) - len(cell.state)
    out = []
    for k in range(rnn.num_layers):
        if f"l{k}.between" in masks:
            x = x * masks[f"l{k}.between"]
        got: dict[str, list[Tensor]] = {}

        def record(name: str, value: Tensor, got: dict[str, list[Tensor]] = got) -> None:
            got.setdefault(name, []).append(value)

        zero = x.new_zeros(B, rnn.hidden_size)
        state = tuple(zero for _ in cell.state) + (None,) * carried
        x, _ = reference_layer(cell, x, state, rnn.layer_params(k), plan.layer(masks, f"l{k}"),
                               rnn.nonlinearity, record)
        if sorted(got) != sorted(declared):
            raise NotApplicable(f"cell {cell.name!r}: its step records {sorted(got)} but the cell "
                                f"declares {sorted(declared)} (CellSpec.activations); make them "
                                "agree")
        out.append({name: torch.stack(got[name]) for name in declared})
    return out
