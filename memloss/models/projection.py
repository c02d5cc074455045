"""LSTM layers with a projection (``torch.nn.LSTM(proj_size=P)``): ``h_t = W_hr (o_t *
tanh(c_t))`` is ``P`` wide and feeds the recurrent product (``W_hh`` is ``[4H, P]``).

Two layer functions with the paths' contract (:mod:`memloss.models.paths.common`), for
schemes whose masks act outside the recurrence (``input``, ``weight``, ``between``,
``output``): ``native`` runs torch's kernel as ``torch.nn.LSTM`` calls it; ``reference`` runs
the cell's own step in a loop and projects its output. The fused path has no projection:
a layer asking for it runs the native kernel (``Recurrent.chosen_path`` says so).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .cells import CellSpec
from .masks import LayerMasks
from .paths.common import Params, State, input_pre, recurrent_bias, recurrent_weight
from .paths.native import call_kernel, torch_weights

__all__ = ["PROJECTED_RUNS"]


def native_projected(cell: CellSpec, x: Tensor, state: State, params: Params,
                     masks: LayerMasks, nonlinearity: str = "tanh") -> tuple[Tensor, State]:
    m = masks.values.get("input")
    h, c = state[0], state[1]
    assert h is not None and c is not None
    # torch's kernel sees the projection from the states' widths (h is P wide, c H wide)
    return call_kernel(torch._VF.lstm, x if m is None else x * m, [h, c],
                       *torch_weights(params, masks))


def reference_projected(cell: CellSpec, x: Tensor, state: State, params: Params,
                        masks: LayerMasks, nonlinearity: str = "tanh") -> tuple[Tensor, State]:
    xp = input_pre(cell, x, params, masks)
    w_hh, b_rec, w_hr = recurrent_weight(params, masks), recurrent_bias(cell, params), \
        params["weight_hr"]
    h, c = state[0], state[1]
    assert h is not None and c is not None
    outs = []
    for t in range(x.shape[0]):
        h_hat, c = cell.step((xp[t] + F.linear(h, w_hh, b_rec),), (h, c), {}, {},
                             nonlinearity)[:2]
        h = F.linear(h_hat, w_hr)
        outs.append(h)
    return torch.stack(outs), (h, c)


#: layer functions by path for projected LSTM layers
PROJECTED_RUNS = {"native": native_projected, "reference": reference_projected}
