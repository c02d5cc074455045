"""LSTM layers with a projection (``torch.nn.LSTM(proj_size=P)``): ``h_t = W_hr (o_t *
tanh(c_t))`` is ``P`` wide and feeds the recurrent product (``W_hh`` is ``[4H, P]``).

Two layer functions with the paths' contract (:mod:`memloss.models.paths.common`), for
schemes whose masks act outside the recurrence (``input``, ``weight``, ``between``,
``output``): ``native`` runs torch's kernel through ``functional_call``; ``reference`` runs
the cell's own step in a loop and projects its output. The fused path has no projection:
a layer asking for it runs the native kernel (``Recurrent.chosen_path`` says so).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from .cells import CellSpec
from .masks import LayerMasks
from .paths.common import Params, State, input_pre, recurrent_bias, recurrent_weight

__all__ = ["PROJECTED_RUNS"]

_templates: dict[tuple, nn.Module] = {}


def _template(I: int, H: int, P: int, bias: bool, device: torch.device,
              dtype: torch.dtype) -> nn.Module:
    key = (I, H, P, bias, device, dtype)
    if key not in _templates:
        with torch.device("meta"):
            mod = nn.LSTM(I, H, bias=bias, proj_size=P)
        _templates[key] = mod.to_empty(device=device).to(dtype)
    return _templates[key]


def native_projected(cell: CellSpec, x: Tensor, state: State, params: Params,
                     masks: LayerMasks, nonlinearity: str = "tanh") -> tuple[Tensor, State]:
    w_ih, w_hr = params["weight_ih"], params["weight_hr"]
    mod = _template(w_ih.shape[1], w_hr.shape[1], w_hr.shape[0], "bias_ih" in params,
                    x.device, x.dtype)
    weights = {"weight_ih_l0": w_ih, "weight_hh_l0": recurrent_weight(params, masks),
               "weight_hr_l0": w_hr}
    if "bias_ih" in params:
        weights.update(bias_ih_l0=params["bias_ih"], bias_hh_l0=params["bias_hh"])
    m = masks.values.get("input")
    h, c = state[0], state[1]
    assert h is not None and c is not None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
        out, (hn, cn) = functional_call(mod, weights, (x if m is None else x * m,
                                                       (h.unsqueeze(0), c.unsqueeze(0))))
    return out, (hn[0], cn[0])


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
