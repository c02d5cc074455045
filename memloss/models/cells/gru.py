"""GRU in the torch/cuDNN reset-after form (Semeniuta eq. 10-13; docs/models.md says why).

    r = sigm(x_r + h_r),  z = sigm(x_z + h_z)          x_* = x~ W_*^T + b_i*,  h_* = h~ U_*^T + b_h*
    n = d_upd(tanh(x_n + r h_n))                       Semeniuta eq. 13
    h^ = n + z (h_{t-1} - n) = (1 - z) n + z h_{t-1}
    h_t = zone(z_h, h_{t-1}, d_hid(h^))
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import (Activation, CellSpec, Memory, Params, Pre, Record, State, StepMasks, drop, emit,
                   register_cell)

__all__ = ["GRU", "gru_step"]


def gru_step(pre: Pre, state: State, m: StepMasks, p: Params,
             nonlinearity: str = "tanh", record: Record | None = None) -> tuple[Tensor, ...]:
    xw, hw = pre
    h = state[0]
    assert h is not None
    xr, xz, xn = xw.chunk(3, dim=-1)
    hr, hz, hn = hw.chunk(3, dim=-1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    if record is not None:
        record("r", r), record("z", z), record("n", n)
    n = drop(n, m.get("update"))
    return (emit(n + z * (h - n), h, m),)


GRU = register_cell(CellSpec(
    "gru", gates=("r", "z", "n"), state=("h",), features=frozenset({"update"}), step=gru_step,
    description="GRU (Semeniuta eq. 10-12, torch/cuDNN reset-after form)", joint=False,
    input_bias=("bias_ih",), recurrent_bias="bias_hh", native="GRU",
    activations=(Activation("r", "reset", "sigmoid"), Activation("z", "update", "sigmoid"),
                 Activation("n", "candidate", "tanh")),
    # torch's form h = (1 - z) n + z h_{t-1}: z keeps the state, the hidden site drops it
    memory=Memory(state="h", gate="z", site="hidden")))
