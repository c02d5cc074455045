"""The native path: the kernels of ``torch.nn.LSTM/GRU/RNN`` (oneDNN on CPU, cuDNN on CUDA),
called as those modules call them (``torch._VF.lstm`` / ``gru`` / ``rnn_tanh`` /
``rnn_relu`` with the weights as a list), for a cell with a ``native`` module and a scheme
with no mask inside the recurrence: the ``input`` mask is applied before the kernel,
``weight`` to the weight passed in, the ``output`` mask by the layer after it.

Calling the kernel directly, not the module through ``functional_call``, saves what the
module call costs (swapping the parameters in and out, the module's checks: one forward at
H = 8, B = 2 took 368 us that way against 219 us for the kernel alone on CPU,
docs/performance.md); the kernel, its arguments and so its numbers are the same.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping

import torch
from torch import Tensor

from ..cells import TORCH_PARAMS, CellSpec
from ..masks import LayerMasks
from ..sites import recurrence_sites
from .common import Params, State, recurrent_weight

__all__ = ["native_eligible", "native_layer", "call_kernel", "torch_weights"]


def native_eligible(sites: Mapping[str, object], cell: CellSpec | None = None) -> bool:
    """True when every site acts outside the recurrence with tied input masks (and, given a
    ``cell``, ``torch.nn`` has a module for it)."""
    if cell is not None and (cell.native is None or cell.params != TORCH_PARAMS):
        return False
    if set(sites) & recurrence_sites():
        return False
    return not getattr(sites.get("input"), "per_gate", False)


def _kernel(cell: CellSpec, nonlinearity: str) -> Callable[..., Any]:
    """The ``torch._VF`` function ``torch.nn``'s module of ``cell`` calls."""
    if cell.native == "RNN":
        return torch._VF.rnn_relu if nonlinearity == "relu" else torch._VF.rnn_tanh
    return {"LSTM": torch._VF.lstm, "GRU": torch._VF.gru}[str(cell.native)]


def native_layer(cell: CellSpec, x: Tensor, state: State, params: Params, masks: LayerMasks,
                 nonlinearity: str = "tanh") -> tuple[Tensor, State]:
    """Same contract as :func:`memloss.models.paths.reference.reference_layer`, on the
    native kernel."""
    weights, bias = torch_weights(params, masks)
    m = masks.values.get("input")
    x = x if m is None else x * m
    return call_kernel(_kernel(cell, nonlinearity), x, [s for s in state if s is not None],
                       weights, bias)


def torch_weights(params: Params, masks: LayerMasks) -> tuple[list[Tensor], bool]:
    """A layer's weights in ``torch.nn``'s order (weight-drop applied to ``weight_hh``; a
    projection's ``weight_hr`` last), and whether they include biases."""
    weights = [params["weight_ih"], recurrent_weight(params, masks)]
    bias = "bias_ih" in params
    if bias:
        weights += [params["bias_ih"], params["bias_hh"]]
    if "weight_hr" in params:
        weights.append(params["weight_hr"])
    return weights, bias


def call_kernel(kernel: Callable[..., Any], x: Tensor, state: list[Tensor],
                weights: list[Tensor], bias: bool) -> tuple[Tensor, State]:
    """One layer of ``kernel`` (a ``torch._VF`` recurrent function) over ``x`` ``[T, B, I]``
    from ``state`` (``[B, ...]`` tensors) with ``weights`` in ``torch.nn``'s order
    (``weight_ih, weight_hh[, bias_ih, bias_hh][, weight_hr]``): the output and the final
    state."""
    hx: Any = [s.unsqueeze(0) for s in state]
    # the arguments torch.nn's module passes: one layer, no dropout between layers, train
    # (cuDNN keeps what its backward needs), one direction, time first
    args = (x, hx if len(hx) > 1 else hx[0], weights, bias, 1, 0.0, True, False, False)
    if x.is_cuda:  # cuDNN copies weights that are not one buffer into one, with a warning
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
            out, *hn = kernel(*args)
    else:
        out, *hn = kernel(*args)
    return out, tuple(s[0] for s in hn)
