"""The native path: ``torch.nn.LSTM/GRU/RNN`` kernels (oneDNN on CPU, cuDNN on CUDA) through
``functional_call``, for a cell with a ``native`` module and a scheme with no mask inside the
recurrence: the ``input`` mask is applied before the kernel, ``weight`` to the weight passed
in, the ``output`` mask by the layer after it.
"""
from __future__ import annotations

import warnings
from typing import Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..cells import TORCH_PARAMS, CellSpec
from ..masks import LayerMasks
from ..sites import recurrence_sites
from .common import Params, State, recurrent_weight

__all__ = ["native_eligible", "native_layer"]

_templates: dict[tuple, nn.Module] = {}


def native_eligible(sites: Mapping[str, object], cell: CellSpec | None = None) -> bool:
    """True when every site acts outside the recurrence with tied input masks (and, given a
    ``cell``, ``torch.nn`` has a module for it)."""
    if cell is not None and (cell.native is None or cell.params != TORCH_PARAMS):
        return False
    if set(sites) & recurrence_sites():
        return False
    return not getattr(sites.get("input"), "per_gate", False)


def _template(cell: CellSpec, I: int, H: int, nonlinearity: str, bias: bool,
              device: torch.device, dtype: torch.dtype) -> nn.Module:
    key = (cell.name, I, H, nonlinearity, bias, device, dtype)
    mod = _templates.get(key)
    if mod is None:
        kw = {"nonlinearity": nonlinearity} if "relu" in cell.nonlinearities else {}
        with torch.device("meta"):
            mod = getattr(nn, str(cell.native))(I, H, bias=bias, **kw)
        mod = mod.to_empty(device=device).to(dtype)
        _templates[key] = mod
    return mod


def native_layer(cell: CellSpec, x: Tensor, state: State, params: Params, masks: LayerMasks,
                 nonlinearity: str = "tanh") -> tuple[Tensor, State]:
    """Same contract as :func:`memloss.models.paths.reference.reference_layer`, on the
    native kernel."""
    w_ih = params["weight_ih"]
    mod = _template(cell, w_ih.shape[1], w_ih.shape[0] // cell.num_gates, nonlinearity,
                    "bias_ih" in params, x.device, x.dtype)
    weights = {"weight_ih_l0": w_ih, "weight_hh_l0": recurrent_weight(params, masks)}
    if "bias_ih" in params:
        weights.update(bias_ih_l0=params["bias_ih"], bias_hh_l0=params["bias_hh"])
    m = masks.values.get("input")
    x = x if m is None else x * m
    hx = tuple(s.unsqueeze(0) for s in state if s is not None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
        out, hn = functional_call(mod, weights, (x, hx if len(hx) > 1 else hx[0]))
    return out, tuple(s[0] for s in (hn if isinstance(hn, tuple) else (hn,)))
