"""``memloss.nn.LSTM/GRU/RNN``: ``torch.nn.LSTM/GRU/RNN`` with a ``scheme=``.

Each takes exactly torch's constructor arguments and defaults, plus a keyword-only
``scheme`` (a scheme object or its text form, ``memloss ls schemes``). torch's ``dropout=p``
is the ``torch-dropout:p=p`` scheme (a new mask every step and unit on each layer's output
but the last's, inverted scaling, one mask for both directions), stacked on ``scheme``, so
it shows in ``repr`` and composes with other schemes. With ``scheme="none"`` and
``dropout=0`` a module computes what the torch module computes from the same weights (the
state dicts are interchangeable both ways), from the same seed the same weights.

The forward contract is torch's: batched ``[T, B, I]`` (``[B, T, I]`` with
``batch_first``) or unbatched ``[T, I]`` input, or a ``PackedSequence`` (returned packed
the same way; each sequence stops at its length); ``hx`` and ``h_n`` as torch's, with the
states a scheme adds (Krueger's output-zoneout carries the output gate: ``(h, c, o)``).
Keyword-only ``masks``, ``stochastic`` and ``generator`` reach the underlying
:class:`~memloss.models.Recurrent` (replayable masks, sampling at test time).
"""
from __future__ import annotations

import numbers
import warnings
from typing import Mapping

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from memloss.models import Recurrent
from memloss.models.cells import native_cells
from memloss.models.schemes import Scheme, Stack, parse_scheme, make_scheme

__all__ = ["LSTM", "GRU", "RNN", "RNNBase", "torch_scheme"]

#: torch.nn's mode -> (memloss cell, nonlinearity), from each cell's ``native`` module: the
#: module's name, with ``_TANH``/``_RELU`` for a cell of several nonlinearities (torch.nn.RNN)
_MODES = {(native if len(spec.nonlinearities) == 1 else f"{native}_{nl.upper()}"): (spec.name, nl)
          for native, spec in native_cells().items() for nl in spec.nonlinearities}


def torch_scheme(scheme: "Scheme | str | None", dropout: float) -> Scheme:
    """``scheme`` with torch's ``dropout=`` stacked on it as ``torch-dropout:p=dropout``."""
    base = parse_scheme(scheme)
    if not dropout:
        return base
    extra = make_scheme("torch-dropout", p=float(dropout))
    if base.name == "none":
        return extra
    return Stack((base.schemes if isinstance(base, Stack) else (base,)) + (extra,))


def _check_sizes(mode: str, input_size: object, hidden_size: object, num_layers: object,
                 dropout: object, proj_size: object) -> None:
    for name, v, low in (("input_size", input_size, 1), ("hidden_size", hidden_size, 1),
                         ("num_layers", num_layers, 1), ("proj_size", proj_size, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
            or not 0 <= float(dropout) <= 1):  # type: ignore[arg-type]
        raise ValueError("dropout should be a number in range [0, 1] representing the "
                         f"probability of an element being zeroed, got {dropout!r}")
    if float(dropout) == 1:  # type: ignore[arg-type]
        raise ValueError("dropout=1 zeroes every unit between layers; use a rate below 1")
    if proj_size and mode != "LSTM":
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")


class RNNBase(Recurrent):
    """What LSTM, GRU and RNN share: torch's attributes, hx checks and input forms."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None, *,
                 scheme: "Scheme | str | None" = None, path: str = "auto") -> None:
        if mode not in _MODES:
            raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(_MODES)}")
        _check_sizes(mode, input_size, hidden_size, num_layers, dropout, proj_size)
        if dropout and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          f"non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        cell, nonlinearity = _MODES[mode]
        super().__init__(cell, input_size, hidden_size, num_layers,
                         scheme=torch_scheme(scheme, dropout), batch_first=bool(batch_first),
                         nonlinearity=nonlinearity, bias=bool(bias), path=path,
                         bidirectional=bool(bidirectional), proj_size=proj_size, device=device,
                         dtype=dtype)
        self.mode, self.dropout = mode, float(dropout)

    # --- torch.nn's attributes ----------------------------------------------------------
    @property
    def _flat_weights_names(self) -> list[str]:
        return [name for name, _ in self.named_parameters(recurse=False)]

    @property
    def _all_weights(self) -> list[list[str]]:
        """Parameter names per layer and direction, in torch's order."""
        return [[f"{n}_{tag}" for n in self.layer_params(k, d)]
                for k in range(self.num_layers) for d, tag in enumerate(self.layer_tags(k))]

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[torch.nn.Parameter]]:
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """Kept for torch.nn code (called after ``.to()`` or under DataParallel). torch packs
        cuDNN's weights into one buffer here; every path of this module reads the
        parameters as they are, so there is nothing to pack."""

    # --- forward ------------------------------------------------------------------------
    def _check_hx(self, hx: object, batched: bool) -> None:
        if hx is None:
            return
        states = hx if isinstance(hx, (tuple, list)) else (hx,)
        if self.mode == "LSTM" and not isinstance(hx, (tuple, list)):
            raise ValueError(f"hx for an LSTM must be a tuple ({', '.join(self.state_names)}) "
                             f"of tensors, got a {type(hx).__name__}")
        want = 3 if batched else 2
        for name, s in zip(self.state_names, states):
            if isinstance(s, Tensor) and s.dim() != want:
                kind = "batched 3-D" if batched else "unbatched 2-D"
                raise ValueError(f"for {kind} input, {name}_0 must be {want}-D, got a "
                                 f"{s.dim()}-D tensor of shape {tuple(s.shape)}")

    def forward(self, input: "Tensor | PackedSequence", hx=None, *,  # type: ignore[override]
                masks: Mapping[str, Tensor] | None = None, stochastic: bool | None = None,
                generator: torch.Generator | None = None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx, masks, stochastic, generator)
        if not isinstance(input, Tensor):
            raise ValueError(f"input must be a tensor or a PackedSequence, got "
                             f"{type(input).__name__}")
        if input.dim() not in (2, 3):
            raise ValueError(f"{self.mode}: expected input to be 2-D (unbatched) or 3-D "
                             f"(batched), got {input.dim()}-D of shape {tuple(input.shape)}")
        batched = input.dim() == 3
        self._check_hx(hx, batched)
        if batched:
            return super().forward(input, hx, masks=masks, stochastic=stochastic,
                                   generator=generator)
        bd = 0 if self.batch_first else 1
        if hx is not None:
            hx = tuple(s.unsqueeze(1) for s in hx) if isinstance(hx, (tuple, list)) \
                else hx.unsqueeze(1)
        out, h_n = super().forward(input.unsqueeze(bd), hx, masks=masks, stochastic=stochastic,
                                   generator=generator)
        h_n = tuple(s.squeeze(1) for s in h_n) if isinstance(h_n, tuple) else h_n.squeeze(1)
        return out.squeeze(bd), h_n

    def _forward_packed(self, packed: PackedSequence, hx, masks, stochastic, generator):
        sizes = packed.batch_sizes
        if sizes.numel() and bool((sizes[1:] > sizes[:-1]).any()):
            raise ValueError(f"the PackedSequence's batch_sizes {sizes.tolist()} increase; "
                             "lengths must be sorted longest first: build it with "
                             "pack_padded_sequence(..., enforce_sorted=False) or "
                             "pack_sequence(..., enforce_sorted=False)")
        self._check_hx(hx, True)
        x, lengths = pad_packed_sequence(packed, batch_first=self.batch_first)
        out, h_n = super().forward(x, hx, lengths=lengths, masks=masks, stochastic=stochastic,
                                   generator=generator)
        bd = 0 if self.batch_first else 1
        order = packed.sorted_indices
        if order is not None:
            out, lengths = out.index_select(bd, order), lengths[order.cpu()]
        data = pack_padded_sequence(out, lengths, batch_first=self.batch_first).data
        return PackedSequence(data, sizes, packed.sorted_indices, packed.unsorted_indices), h_n

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        return (f"{s}, scheme={self.scheme.spec!r}, path={self.path!r}, "
                f"chosen_path={self.chosen_path()!r}")


class LSTM(RNNBase):
    """``torch.nn.LSTM`` with a keyword-only ``scheme=`` (see :mod:`memloss.nn.rnn`)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None, *,
                 scheme: "Scheme | str | None" = None, path: str = "auto") -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype, scheme=scheme,
                         path=path)


class GRU(RNNBase):
    """``torch.nn.GRU`` with a keyword-only ``scheme=`` (see :mod:`memloss.nn.rnn`)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None, *,
                 scheme: "Scheme | str | None" = None, path: str = "auto") -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype, scheme=scheme, path=path)


class RNN(RNNBase):
    """``torch.nn.RNN`` with a keyword-only ``scheme=`` (see :mod:`memloss.nn.rnn`)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None, *,
                 scheme: "Scheme | str | None" = None, path: str = "auto") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype, scheme=scheme, path=path)


# Whole models holding these layers load under torch.load's default weights_only=True, as
# with torch.nn's (their pickled state is plain data: Recurrent.__getstate__).
if hasattr(torch.serialization, "add_safe_globals"):  # torch >= 2.4
    torch.serialization.add_safe_globals([LSTM, GRU, RNN])
