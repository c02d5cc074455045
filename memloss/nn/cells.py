"""``memloss.nn.LSTMCell/GRUCell/RNNCell``: ``torch.nn.LSTMCell/GRUCell/RNNCell`` with a
``scheme=``, one step per call, for loops the user writes (decoders, attention).

Each takes torch's constructor arguments and defaults plus a keyword-only ``scheme``; its
parameters are torch's (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``), so state
dicts load both ways, and with ``scheme="none"`` a cell computes what torch's computes.

**A sequence's masks are held across steps.** A scheme's per-sequence masks (Gal's,
Moon's, Semeniuta's per-sequence masks, weight-drop's matrix) are drawn when a sequence
starts and reused at every later step; per-step masks are drawn anew each step. A sequence
starts at a call with ``hx=None`` (the state starts at zero, as torch's cells start it) or
at the first call after :meth:`reset_masks` (for a sequence that starts from a given state,
e.g. a decoder started from an encoder's state). A step of a batch of another size without
either is refused. Out of training mode (``stochastic=False``) every mask is its
expectation and nothing is held.

A step on the same masks computes what one step of the one-layer layer
(``memloss.nn.LSTM``, ...) computes: ``cell.masks_at(layer.mask_plan().sample(T, B), t)``
gives the masks of step ``t`` of the layer's masks, for ``forward(..., masks=)``. The one
site a cell leaves out is a stack's ``output`` (the dropout of what the layer returns, as in
``zaremba``'s and ``gal``'s ``p``): the code around the cell applies its own dropout to
what it reads from the cell, so the cell's ``h`` is the layer's output before that mask.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from memloss.models import Recurrent
from memloss.models.masks import Masks
from memloss.models.paths import LAYER_RUNS
from memloss.models.recurrent import check_call
from memloss.models.schemes import Scheme

__all__ = ["RNNCellBase", "LSTMCell", "GRUCell", "RNNCell"]

_LAYER = "l0"


class RNNCellBase(Recurrent):
    """What LSTMCell, GRUCell and RNNCell share: torch's parameter names, one step per call,
    per-sequence masks held between calls (see :mod:`memloss.nn.cells`)."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None, *,
                 scheme: "Scheme | str | None" = None) -> None:
        super().__init__(cell, input_size, hidden_size, 1, scheme=scheme,
                         nonlinearity=nonlinearity, bias=bool(bias), path="reference",
                         device=device, dtype=dtype)
        self._leave_output()
        for name in list(self._parameters):  # torch.nn's cell names: weight_ih, not weight_ih_l0
            self._parameters[name.removesuffix(f"_{_LAYER}")] = self._parameters.pop(name)
        self._held: Masks | None = None

    def _leave_output(self) -> None:
        """The stack's ``output`` site is the caller's (module doc): not in this cell's plan."""
        if "output" in self.sites:
            self.sites = {k: v for k, v in self.sites.items() if k != "output"}
            self._plan = self._make_plan()

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._leave_output()

    def layer_params(self, k: int = 0, direction: int = 0) -> dict[str, Tensor]:
        return {name: p for name, p in self._parameters.items() if p is not None}

    def reset_masks(self) -> None:
        """Start a new sequence: the next step draws new per-sequence masks."""
        self._held = None

    def masks_at(self, masks: Mapping[str, Tensor], t: int) -> Masks:
        """Step ``t``'s masks of a sequence's masks (``mask_plan().sample(T, B)``): per-step
        masks at ``t`` (kept as a one-step sequence), the others as they are."""
        out = {}
        for e in self._plan.entries:
            m = masks[e.key]
            out[e.key] = m[t:t + 1] if e.spec.sampling == "step" and m.dim() > 0 else m
        return out

    def _step_masks(self, B: int, x: Tensor, stochastic: bool | None,
                    generator: torch.Generator | None, new_sequence: bool) -> Masks:
        if not (self.training if stochastic is None else stochastic):
            self._held = None
            return self._plan.expected(device=x.device, dtype=x.dtype)
        if new_sequence:
            self._held = None
        held = self._held
        if held is not None:
            n = next((v.shape[0] for k, v in held.items()
                      if self._plan.get(k).spec.sampling == "sequence"), B)  # type: ignore[union-attr]
            if n != B:
                raise ValueError(f"this step has a batch of {B} but the sequence's masks were "
                                 f"drawn for {n}; start a new sequence with hx=None or "
                                 "reset_masks()")
        fresh = self._plan.sample(1, B, generator=generator, device=x.device, dtype=x.dtype)
        if held is None:
            self._held = {e.key: fresh[e.key] for e in self._plan.entries
                          if e.spec.sampling != "step"}
            return fresh
        return {**fresh, **held}

    def forward(self, input: Tensor, hx: "Tensor | tuple[Tensor, ...] | None" = None, *,
                masks: Mapping[str, Tensor] | None = None, stochastic: bool | None = None,
                generator: torch.Generator | None = None):
        """One step: ``input`` ``[B, input_size]`` (or unbatched ``[input_size]``), ``hx``
        the state as torch's cell takes it (None: zeros, and a new sequence). ``masks``: this
        step's masks (:meth:`masks_at`), used as given and not held."""
        if not isinstance(input, Tensor) or input.dim() not in (1, 2):
            shape = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"{type(self).__name__}: expected input to be 1-D (unbatched) or "
                             f"2-D [batch, input_size], got {shape}")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        names = self.state_names
        given = None if hx is None else (tuple(hx) if isinstance(hx, (tuple, list)) else (hx,))
        if given is not None:
            if len(names) > 1 and not isinstance(hx, (tuple, list)):
                raise ValueError(f"hx for {type(self).__name__} must be a tuple "
                                 f"({', '.join(names)}) of tensors, got a {type(hx).__name__}")
            if not batched:
                given = tuple(s.unsqueeze(0) for s in given)
        check_call(x.unsqueeze(0), given, masks, self.weight_ih, 0)
        self._check_input(x.unsqueeze(0))
        B = x.shape[0]
        if masks is not None:
            self._plan.validate(masks, 1, B)
            m = {k: v.to(device=x.device, dtype=x.dtype) for k, v in masks.items()}
        else:
            m = self._step_masks(B, x, stochastic, generator, new_sequence=hx is None)
        layer_hx = None if given is None else tuple(s.unsqueeze(0) for s in given)
        if layer_hx is not None and len(names) == 1:
            layer_hx = layer_hx[0]
        state0 = self._initial_state(layer_hx, B, x.unsqueeze(0))
        _, state = LAYER_RUNS["reference"](
            self.cell, x.unsqueeze(0), tuple(None if s is None else s[0] for s in state0),
            self.layer_params(), self._plan.layer(m, _LAYER), self.nonlinearity)
        out = tuple(s if batched else s.squeeze(0) for s in state)
        return out if len(out) > 1 else out[0]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return f"{s}, scheme={self.scheme.spec!r}"


class LSTMCell(RNNCellBase):
    """``torch.nn.LSTMCell`` with a keyword-only ``scheme=`` (see :mod:`memloss.nn.cells`);
    returns ``(h, c)`` (``(h, c, o)`` under a scheme whose output gate carries over)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, scheme: "Scheme | str | None" = None) -> None:
        super().__init__("lstm", input_size, hidden_size, bias, "tanh", device, dtype,
                         scheme=scheme)


class GRUCell(RNNCellBase):
    """``torch.nn.GRUCell`` with a keyword-only ``scheme=`` (see :mod:`memloss.nn.cells`)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, scheme: "Scheme | str | None" = None) -> None:
        super().__init__("gru", input_size, hidden_size, bias, "tanh", device, dtype,
                         scheme=scheme)


class RNNCell(RNNCellBase):
    """``torch.nn.RNNCell`` with a keyword-only ``scheme=`` (see :mod:`memloss.nn.cells`)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None, *,
                 scheme: "Scheme | str | None" = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__("rnn", input_size, hidden_size, bias, nonlinearity, device, dtype,
                         scheme=scheme)


# Whole models holding these cells load under torch.load's default weights_only=True.
if hasattr(torch.serialization, "add_safe_globals"):  # torch >= 2.4
    torch.serialization.add_safe_globals([LSTMCell, GRUCell, RNNCell])
