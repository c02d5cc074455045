"""Variable-length batches and the reverse direction, around any execution path.

A batch of sequences of different lengths is a padded ``[T, B, *]`` tensor and ``lengths``
(``[B]``, any order): sequence ``b`` has real steps ``0 .. lengths[b]-1``. A layer runs the
batch in chunks of time that end where some sequence ends (one call of its path per distinct
length); after each chunk the sequences that have ended keep the state of their last real
step, so the final state of every sequence is its state at its last real step, and its
outputs past its end are zero (as ``pad_packed_sequence`` pads). Every path (reference,
native, fused) runs unchanged and sees the full batch, so it compiles one kernel per layout.

The reverse direction reads each sequence backwards within its own length (``x[L-1], ...,
x[0]``, the pad steps after them); its per-step masks are indexed by the step it processes,
so a sequence run alone with the first ``L`` steps of the masks gives the same result.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .cells import CellSpec
from .masks import LayerMasks

__all__ = ["check_lengths", "reverse_within", "zero_pads", "run_lengths"]

State = tuple["Tensor | None", ...]
Run = Callable[..., tuple[Tensor, State]]


def check_lengths(lengths: object, T: int, B: int) -> Tensor | None:
    """``lengths`` as a CPU int64 tensor of ``B`` values in ``[1, T]``, or None when every
    sequence has all ``T`` steps (or no lengths were given). Bad values: one ValueError."""
    if lengths is None:
        return None
    if isinstance(lengths, Tensor):
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise ValueError(f"lengths must be integers, got a {lengths.dtype} tensor")
        lens = lengths.detach().to("cpu", torch.int64)
    else:
        try:
            values = list(lengths)  # type: ignore[call-overload]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise ValueError(f"lengths must be integers, got {values}")
            lens = torch.as_tensor(values, dtype=torch.int64)
        except TypeError:
            raise ValueError(f"lengths must be a 1-D tensor or list of B integers, got "
                             f"{type(lengths).__name__}") from None
    if lens.dim() != 1 or lens.numel() != B:
        raise ValueError(f"lengths must hold one length per sequence (B={B}), got shape "
                         f"{tuple(lens.shape)}")
    if B and (int(lens.min()) < 1 or int(lens.max()) > T):
        raise ValueError(f"lengths must lie in [1, T={T}] (the padded time axis), got "
                         f"min {int(lens.min())}, max {int(lens.max())}")
    return None if bool((lens == T).all()) else lens


def _time_index(lengths: Tensor, T: int, device: torch.device) -> Tensor:
    """``[T, B]`` index reading each sequence backwards within its length (pads stay put)."""
    t = torch.arange(T).unsqueeze(1)
    L = lengths.unsqueeze(0)
    return torch.where(t < L, L - 1 - t, t).to(device)


def reverse_within(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Each sequence of ``x`` ([T, B, *]) reversed within its own length (an involution)."""
    if lengths is None:
        return x.flip(0)
    idx = _time_index(lengths, x.shape[0], x.device)
    return torch.gather(x, 0, idx.view(idx.shape + (1,) * (x.dim() - 2)).expand_as(x))


def zero_pads(x: Tensor, lengths: Tensor | None) -> Tensor:
    """``x`` ([T, B, *]) with the steps past each sequence's length set to zero."""
    if lengths is None:
        return x
    keep = torch.arange(x.shape[0]).unsqueeze(1) < lengths.unsqueeze(0)
    return x * keep.to(device=x.device, dtype=x.dtype).view(keep.shape + (1,) * (x.dim() - 2))


def _chunk(masks: LayerMasks, t0: int, t1: int) -> LayerMasks:
    values = {k: (v[t0:t1] if k in masks.step else v) for k, v in masks.values.items()}
    return LayerMasks(values, masks.step, masks.per_gate)


def run_lengths(run: Run, cell: CellSpec, x: Tensor, state: State, params: object,
                masks: LayerMasks, nonlinearity: str, lengths: Tensor | None
                ) -> tuple[Tensor, State]:
    """Run one layer (``run``: a path's layer function) over ``x`` ([T, B, I]) where each
    sequence stops at its length: outputs past the end are zero, the final state of each
    sequence is its state at its last real step."""
    if lengths is None:
        return run(cell, x, state, params, masks, nonlinearity)
    outs = []
    t0 = 0
    for t1 in sorted(set(lengths.tolist())):
        y, new = run(cell, x[t0:t1], state, params, _chunk(masks, t0, t1), nonlinearity)
        if t0 == 0:
            state = new  # every sequence has at least one step
        else:
            active = (lengths > t0).to(x.device).view(-1, 1)
            state = tuple(n if o is None else torch.where(active, n, o)
                          for n, o in zip(new, state))
        outs.append(y)
        t0 = t1
    out = torch.cat(outs)
    if t0 < x.shape[0]:
        out = torch.cat([out, out.new_zeros((x.shape[0] - t0,) + out.shape[1:])])
    return zero_pads(out, lengths), state
