"""LSTM (Zaremba 3.1, Semeniuta eq. 4-6) with every site of its step.

    i, f, g, o = sigm(a_i), sigm(a_f), tanh(a_g), sigm(a_o)      a = x~ W^T + h~ U^T + b
    g~  = d_upd(g)                                               Semeniuta eq. 9
    c^  = d_cell(f c_{t-1} + i g~)                               Moon (Semeniuta eq. 8)
    o~  = o + z_o (o~_{t-1} - o)     (o~_0 = o_0)                Krueger 3.3 output zoneout
    h^  = o~ tanh(c^)
    h_t = zone(z_h, h_{t-1}, d_hid(h^)),  c_t = zone(z_c, c_{t-1}, c^)   Krueger 3.3
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .base import (Activation, CellSpec, Memory, Params, Pre, Record, State, StepMasks, drop, emit,
                   register_cell, zone)

__all__ = ["LSTM", "lstm_step", "lstm_update", "output_gate", "LSTM_ACTIVATIONS", "LSTM_MEMORY"]

#: what the LSTM step records, in torch's gate order
LSTM_ACTIVATIONS = (Activation("i", "input", "sigmoid"), Activation("f", "forget", "sigmoid"),
                    Activation("g", "candidate", "tanh"), Activation("o", "output", "sigmoid"))
#: c_t = f c_{t-1} + i g: the forget gate keeps the cell state, Moon's site drops it
LSTM_MEMORY = Memory(state="c", gate="f", site="cell")


def output_gate(o: Tensor, carried: tuple[Tensor | None, ...], m: StepMasks) -> Tensor:
    """Krueger 3.3: where the update was dropped the output gate keeps its previous value,
    ``o~_t = o_t + z_o (o~_{t-1} - o_t)``; with no previous gate (a fresh sequence) ``o~_0 =
    o_0``. ``carried`` holds ``o~_{t-1}`` when the ``output_gate`` site is used."""
    z = m.get("output_gate")
    if not carried or carried[0] is None or z is None:
        return o
    return zone(z, carried[0], o)


def lstm_update(a: Tensor, state: State, m: StepMasks,
                squash_cell: Callable[[Tensor], Tensor] | None = None,
                record: Record | None = None) -> tuple[Tensor, ...]:
    """The LSTM step from its pre-activation ``a`` ([B, 4H], gates i, f, g, o). ``squash_cell``
    maps the cell state before its tanh (LayerNorm-LSTM normalizes it there); ``record``
    receives the four activations (:data:`LSTM_ACTIVATIONS`)."""
    h, c, *carried = state
    i, f, g, o = a.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    if record is not None:
        for name, v in zip("ifgo", (i, f, g, o)):
            record(name, v)
    c_hat = drop(f * c + i * drop(g, m.get("update")), m.get("cell"))
    o = output_gate(o, tuple(carried), m)
    h_hat = o * torch.tanh(c_hat if squash_cell is None else squash_cell(c_hat))
    new = (emit(h_hat, h, m), zone(m.get("zoneout_cell"), c, c_hat))
    return new + ((o,) if carried else ())


def lstm_step(pre: Pre, state: State, m: StepMasks, p: Params,
              nonlinearity: str = "tanh", record: Record | None = None) -> tuple[Tensor, ...]:
    (a,) = pre
    return lstm_update(a, state, m, record=record)


LSTM = register_cell(CellSpec(
    "lstm", gates=("i", "f", "g", "o"), state=("h", "c"),
    features=frozenset({"cell", "update", "output_gate"}), step=lstm_step,
    description="LSTM (Zaremba 3.1 / Semeniuta eq. 4-6), torch.nn.LSTM gates and weights",
    native="LSTM", activations=LSTM_ACTIVATIONS, memory=LSTM_MEMORY))
