"""What every path does around the cell's step: the input product before the loop, the
recurrent product inside it, and the masks that act there (``input``, ``recurrent``,
``weight``; :mod:`memloss.models.sites`, ``acts`` = ``input`` or ``product``).

A path runs one layer: ``run(cell, x, state, params, masks, nonlinearity) -> (outputs
[T, B, H], final state)``, with ``x`` ``[T, B, I]``, ``state`` a tuple in the cell's state
layout (``[B, H]`` tensors, a carried state may be None), ``params`` the layer's parameters
by name (without the ``_l{k}`` suffix) and ``masks`` the layer's :class:`LayerMasks`.
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cells import CellSpec
from ..masks import LayerMasks

__all__ = ["LayerRun", "State", "input_pre", "recurrent_weight", "recurrent_bias",
           "recurrent_pre", "step_params", "check_layer"]

State = tuple[Optional[Tensor], ...]
Params = Mapping[str, Tensor]
LayerRun = Callable[[CellSpec, Tensor, State, Params, LayerMasks, str], tuple[Tensor, State]]
Linear = Callable[[Tensor, Tensor, Optional[Tensor]], Tensor]


def _gate_einsum(x: Tensor, m: Tensor, w: Tensor) -> Tensor:
    """``x m_g W_g^T`` for every gate block ``g`` ([T, B, G*H]; ``m`` ``[T|., B, G, I]``)."""
    T, B, I = x.shape
    G = m.shape[-2]
    out = torch.einsum("tbgi,ghi->tbgh", x.unsqueeze(-2) * m, w.view(G, -1, I))
    return out.reshape(T, B, -1)


def input_pre(cell: CellSpec, x: Tensor, params: Params, masks: LayerMasks,
              linear: Linear = F.linear,
              gate_product: Callable[[Tensor, Tensor, Tensor], Tensor] = _gate_einsum
              ) -> Tensor:
    """The step's input pre-activations for every step at once ([T, B, G*H]): the ``input``
    mask on ``x`` (one per gate block when untied: ``gate_product(x, m, W_ih)``, by default
    one einsum), ``x~ W_ih^T`` with the cell's input biases, or the cell's ``project`` of
    ``x~ W_ih^T``."""
    w = params["weight_ih"]
    bias = None
    if cell.project is None:
        for name in cell.input_bias:
            b = params.get(name)
            if b is not None:
                bias = b if bias is None else bias + b
    m = masks.values.get("input")
    if m is not None and "input" in masks.per_gate and m.dim() > 0:
        out = gate_product(x, m, w)
        out = out if bias is None else out + bias
    else:
        out = linear(x if m is None else x * m, w, bias)
    return out if cell.project is None else cell.project(out, params)


def recurrent_weight(params: Params, masks: LayerMasks) -> Tensor:
    """``W_hh`` with the ``weight`` site's DropConnect mask (once per forward)."""
    w = params["weight_hh"]
    m = masks.values.get("weight")
    return w if m is None else w * m


def recurrent_bias(cell: CellSpec, params: Params) -> Tensor | None:
    return params.get(cell.recurrent_bias) if cell.recurrent_bias else None


def recurrent_pre(h: Tensor, w_hh: Tensor, bias: Tensor | None, m: Tensor | None,
                  per_gate: bool) -> Tensor:
    """``h~ W_hh^T (+ bias)`` with ``h~ = h m_rec``; per-gate masks ([B, G, H]) use one
    einsum over the gate blocks."""
    if m is not None and per_gate and m.dim() > 0:
        B, H = h.shape
        G = w_hh.shape[0] // H
        out = torch.einsum("bgh,gkh->bgk", h.unsqueeze(-2) * m, w_hh.view(G, H, H))
        out = out.reshape(B, G * H)
        return out if bias is None else out + bias
    return F.linear(h if m is None else h * m, w_hh, bias)


def step_params(cell: CellSpec, params: Params) -> dict[str, Tensor]:
    """The parameters the cell's step reads."""
    return {k: params[k] for k in cell.step_params if k in params}


def check_layer(cell: CellSpec, masks: LayerMasks) -> None:
    if cell.num_gates == 1 and "recurrent" in masks.per_gate:
        raise ValueError(f"a {cell.name} cell has one gate block; per-gate recurrent masks do "
                         "not apply")
