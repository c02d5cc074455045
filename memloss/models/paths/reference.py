"""The reference path: the cell's step in a plain loop (any device; what ``torch.compile``,
``torch.export`` and ``torch.jit.trace`` see).

The input product of all steps is one product before the loop; each step does the recurrent
product (the ``recurrent`` and ``weight`` sites act there) and calls ``cell.step`` with the
masks of that step. Autograd differentiates through every op. ``record`` (the probes'
recorder, None when a layer runs) is handed to every step, which reports its activations.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..cells import CellSpec, Record
from ..masks import LayerMasks
from .common import (Params, State, check_layer, input_pre, recurrent_bias, recurrent_pre,
                     recurrent_weight, step_params)

__all__ = ["reference_layer"]


def reference_layer(cell: CellSpec, x: Tensor, state: State, params: Params, masks: LayerMasks,
                    nonlinearity: str = "tanh", record: Record | None = None
                    ) -> tuple[Tensor, State]:
    """Run one layer over ``x`` ([T, B, I]); returns (outputs [T, B, H], final state)."""
    check_layer(cell, masks)
    T = x.shape[0]
    xp = input_pre(cell, x, params, masks)
    w_hh, b_rec = recurrent_weight(params, masks), recurrent_bias(cell, params)
    p = step_params(cell, params)
    rec, per_gate = masks.steps("recurrent", T), "recurrent" in masks.per_gate
    outs = []
    for t, m in enumerate(masks.step_masks(T)):
        h = state[0]
        assert h is not None
        r = recurrent_pre(h, w_hh, b_rec, rec[t], per_gate)
        state = cell.step((xp[t] + r,) if cell.joint else (xp[t], r), state, m, p, nonlinearity,
                          record)
        outs.append(state[0])
    return torch.stack(outs), state
