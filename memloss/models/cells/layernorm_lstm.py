"""LayerNorm-LSTM (Ba et al. 2016) as haste offers it (``haste.LayerNormLSTM``; the function
is written out in lmnt-com/haste issue #1):

    a   = LN(x~ W^T; g_x) + LN(h~ U^T; g_h) + b      LN over all 4H gate pre-activations,
                                                     gain only (no shift), eps 1e-5
    c^  = f c_{t-1} + i g  (LSTM gates and sites, memloss.models.cells.lstm)
    h^  = o tanh(LN(c^; g_c, b_c))                   gain and shift on the cell state

Weights and gates in torch order (i, f, g, o); one bias ``b``. Every LSTM site applies where
it does in the LSTM (the normalized cell state only feeds h^; c_t carries c^).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import CellSpec, ParamSpec, Params, Pre, Record, State, StepMasks, register_cell
from .lstm import LSTM_ACTIVATIONS, LSTM_MEMORY, lstm_update

__all__ = ["LAYERNORM_LSTM", "layernorm_lstm_step", "EPS"]

EPS = 1e-5


def _ln(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], weight, bias, EPS)


def _project(xw: Tensor, p: Params) -> Tensor:
    """The input part of every step: ``LN(x~ W^T; g_x) + b``."""
    out = _ln(xw, p["ln_ih_weight"])
    return out if p.get("bias") is None else out + p["bias"]


def layernorm_lstm_step(pre: Pre, state: State, m: StepMasks, p: Params,
                        nonlinearity: str = "tanh", record: Record | None = None
                        ) -> tuple[Tensor, ...]:
    x_part, hw = pre
    return lstm_update(x_part + _ln(hw, p["ln_hh_weight"]), state, m,
                       squash_cell=lambda c: _ln(c, p["ln_cell_weight"], p["ln_cell_bias"]),
                       record=record)


LAYERNORM_LSTM = register_cell(CellSpec(
    "layernorm-lstm", gates=("i", "f", "g", "o"), state=("h", "c"),
    features=frozenset({"cell", "update", "output_gate"}), step=layernorm_lstm_step,
    description="LayerNorm-LSTM (Ba et al. 2016, as haste.LayerNormLSTM): LN of both products "
                "and of the cell state", joint=False,
    params=(ParamSpec("weight_ih", "gates", "input"), ParamSpec("weight_hh", "gates", "hidden"),
            ParamSpec("bias", "gates", bias=True), ParamSpec("ln_ih_weight", "gates", init="ones"),
            ParamSpec("ln_hh_weight", "gates", init="ones"),
            ParamSpec("ln_cell_weight", "hidden", init="ones"),
            ParamSpec("ln_cell_bias", "hidden", init="zeros")),
    input_bias=(), project=_project,
    step_params=("ln_hh_weight", "ln_cell_weight", "ln_cell_bias"),
    activations=LSTM_ACTIVATIONS, memory=LSTM_MEMORY))
