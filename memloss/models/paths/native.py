"""The native path: torch.nn.LSTM/GRU/RNN kernels (cuDNN on CUDA) through functional_call.

Usable when no mask acts inside the recurrence: input/between-layer/output masks are
applied around the kernel and weight-drop is applied to the weight passed in.
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..cells import CellSpec
from ..masks import LayerMasks
from ..sites import recurrence_sites
from .reference import LayerWeights, apply_site

__all__ = ["native_eligible", "native_layer"]

_MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
_templates: dict[tuple, nn.Module] = {}


def native_eligible(sites: dict[str, object]) -> bool:
    """True when every site is outside the recurrence and input masks are tied."""
    if set(sites) & recurrence_sites():
        return False
    spec = sites.get("input")
    return not getattr(spec, "per_gate", False)


def _template(cell: CellSpec, I: int, H: int, nonlinearity: str, bias: bool,
              device: torch.device, dtype: torch.dtype) -> nn.Module:
    key = (cell.name, I, H, nonlinearity, bias, device, dtype)
    mod = _templates.get(key)
    if mod is None:
        kw = {"nonlinearity": nonlinearity} if cell.name == "rnn" else {}
        with torch.device("meta"):
            mod = _MODULES[cell.name](I, H, bias=bias, **kw)
        mod = mod.to_empty(device=device).to(dtype)
        _templates[key] = mod
    return mod


def native_layer(cell: CellSpec, x: Tensor, h0: Tensor, c0: Tensor | None, w: LayerWeights,
                 masks: LayerMasks, nonlinearity: str = "tanh"
                 ) -> tuple[Tensor, Tensor, Tensor | None]:
    """Same contract as :func:`memloss.models.paths.reference_layer`, on the native kernel."""
    I, H = x.shape[-1], h0.shape[-1]
    mod = _template(cell, I, H, nonlinearity, w.b_ih is not None, x.device, x.dtype)
    w_hh = w.w_hh
    if "weight" in masks.values:
        w_hh = w_hh * masks.values["weight"]
    params = {"weight_ih_l0": w.w_ih, "weight_hh_l0": w_hh}
    if w.b_ih is not None:
        params.update(bias_ih_l0=w.b_ih, bias_hh_l0=w.b_hh)
    x = apply_site(x, masks.values.get("input"))
    hx = (h0.unsqueeze(0), c0.unsqueeze(0)) if cell.has_cell else h0.unsqueeze(0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
        out, hn = functional_call(mod, params, (x, hx))
    if cell.has_cell:
        return out, hn[0][0], hn[1][0]
    return out, hn[0], None
