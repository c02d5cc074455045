"""The reference path: plain PyTorch, any device, one layer over a whole sequence.

Input projections for all steps are one matrix product before the loop; the loop does one
recurrent product and the pointwise step. Every mask site of :mod:`memloss.models.schemes` acts here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cells import CellSpec
from ..masks import LayerMasks

__all__ = ["LayerWeights", "reference_layer", "input_projection", "apply_site"]


@dataclass(frozen=True)
class LayerWeights:
    w_ih: Tensor  # [G*H, I]
    w_hh: Tensor  # [G*H, H]
    b_ih: Tensor | None
    b_hh: Tensor | None


def apply_site(x: Tensor, m: Tensor | None) -> Tensor:
    """Multiply a [T, B, N] tensor by a per-step, per-sequence or expected mask."""
    return x if m is None else x * m


def input_projection(x: Tensor, w: LayerWeights, masks: LayerMasks, gates: int,
                     fold_hh_bias: bool) -> Tensor:
    """``(x * m_in) W_ih^T + b`` for all steps at once; per-gate masks use one einsum."""
    bias = w.b_ih
    if fold_hh_bias and w.b_hh is not None:
        bias = w.b_hh if bias is None else bias + w.b_hh
    m = masks.values.get("input")
    if m is not None and "input" in masks.per_gate and m.dim() > 0:
        T, B, I = x.shape
        H = w.w_ih.shape[0] // gates
        xg = x.unsqueeze(-2) * m  # [T, B, G, I]
        out = torch.einsum("tbgi,ghi->tbgh", xg, w.w_ih.view(gates, H, I)).reshape(T, B, gates * H)
        return out if bias is None else out + bias
    return F.linear(apply_site(x, m), w.w_ih, bias)


def _recurrent_product(h: Tensor, w_hh: Tensor, m: Tensor | None, per_gate: bool,
                       gates: int) -> Tensor:
    if m is not None and per_gate and m.dim() > 0:
        B, H = h.shape
        hg = h.unsqueeze(-2) * m  # [B, G, H]
        return torch.einsum("bgh,gkh->bgk", hg, w_hh.view(gates, H, H)).reshape(B, gates * H)
    return F.linear(h if m is None else h * m, w_hh)


def _blend(z: Tensor | None, prev: Tensor, new: Tensor) -> Tensor:
    """Zoneout: keep ``prev`` where ``z`` is 1 (``z`` may be an expectation)."""
    return new if z is None else new + z * (prev - new)


def reference_layer(cell: CellSpec, x: Tensor, h0: Tensor, c0: Tensor | None, w: LayerWeights,
                    masks: LayerMasks, nonlinearity: str = "tanh"
                    ) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run one layer over ``x`` ([T, B, I]); returns (outputs [T, B, H], h_T, c_T)."""
    G = cell.gates
    xw = input_projection(x, w, masks, G, fold_hh_bias=cell.name != "gru")
    w_hh = w.w_hh
    if "weight" in masks.values:
        w_hh = w_hh * masks.values["weight"]
    rec_gate = "recurrent" in masks.per_gate
    T = x.shape[0]
    h, c = h0, c0
    o_prev: Tensor | None = None
    outs = []
    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    for t in range(T):
        hh = _recurrent_product(h, w_hh, masks.at("recurrent", t), rec_gate, G)
        if cell.name == "lstm":
            i, f, g, o = (xw[t] + hh).chunk(4, dim=-1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            g = apply_site(g, masks.at("update", t))
            c_new = apply_site(f * c + i * g, masks.at("cell", t))
            zo = masks.at("output_gate", t)
            if zo is not None:
                o = _blend(zo, o if o_prev is None else o_prev, o)
                o_prev = o
            h_new = o * torch.tanh(c_new)
            c = _blend(masks.at("zoneout_cell", t), c, c_new)
        elif cell.name == "gru":
            if w.b_hh is not None:
                hh = hh + w.b_hh
            xr, xz, xn = xw[t].chunk(3, dim=-1)
            hr, hz, hn = hh.chunk(3, dim=-1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = apply_site(torch.tanh(xn + r * hn), masks.at("update", t))
            h_new = n + z * (h - n)
        else:
            h_new = act(xw[t] + hh)
        h_new = apply_site(h_new, masks.at("hidden", t))
        h = _blend(masks.at("zoneout_hidden", t), h, h_new)
        outs.append(h)
    return torch.stack(outs), h, c
