"""Vanilla RNN (Semeniuta eq. 2): ``h^ = f(x~ W^T + h~ U^T + b)``, ``f`` = tanh or relu;
``h_t = zone(z_h, h_{t-1}, d_hid(h^))``."""
from __future__ import annotations

import torch
from torch import Tensor

from .base import Activation, CellSpec, Params, Pre, Record, State, StepMasks, emit, register_cell

__all__ = ["RNN", "rnn_step"]


def rnn_step(pre: Pre, state: State, m: StepMasks, p: Params,
             nonlinearity: str = "tanh", record: Record | None = None) -> tuple[Tensor, ...]:
    (a,) = pre
    h = state[0]
    assert h is not None
    h_hat = torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a)
    if record is not None:
        record("h", h_hat)
    return (emit(h_hat, h, m),)


RNN = register_cell(CellSpec(
    "rnn", gates=("h",), state=("h",), features=frozenset(), step=rnn_step,
    description="vanilla RNN h_t = f(W x_t + U h_{t-1} + b), f = tanh or relu", native="RNN",
    nonlinearities=("tanh", "relu"),
    activations=(Activation("h", "activation", "nonlinearity"),)))
