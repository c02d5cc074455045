"""Inference: how a net is run under each mode, for the trainer, the evaluator and the probes.

:func:`predict` gives predictions under one of :data:`INFERENCE_MODES` (what evaluation
scores); :func:`mode_masks` gives the explicit mask set of a mode, so that probes can hold
masks fixed and replay them. Modes (the ``mode`` column of every probe frame):

* ``deterministic``: every mask replaced by its expectation under the net's own scaling
  convention (what ``Net.predict_proba(mode="deterministic")`` does);
* ``other-scaling``: deterministic, but every dropout site uses the *other* convention's
  test-time factor (``1-p`` for a net trained with ``inverted`` masks, ``1`` for one
  trained with ``expectation`` masks); this is Semeniuta's scaling mismatch made explicit;
* ``train-mode``: masks sampled as in training (one sample per sequence and draw);
* ``mc``: the average of the predictions of K sampled mask sets (Gal eq. 4).
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor

from memloss.core import validate

from .masks import MaskPlan, Masks
from .schemes import SCALINGS

if TYPE_CHECKING:
    from .net import Net

__all__ = ["INFERENCE_MODES", "MODES", "DETERMINISTIC", "OTHER_SCALING", "TRAIN_MODE", "MC",
           "predict", "net_scaling", "mode_scaling", "expected_masks", "mode_masks",
           "check_modes", "check_mode"]

DETERMINISTIC, OTHER_SCALING, TRAIN_MODE, MC = "deterministic", "other-scaling", "train-mode", "mc"
#: the modes evaluation scores a net under
INFERENCE_MODES = (DETERMINISTIC, MC, TRAIN_MODE)
#: the modes probes run under (``other-scaling`` makes Semeniuta's scaling mismatch explicit)
MODES = (DETERMINISTIC, OTHER_SCALING, TRAIN_MODE, MC)

State = Any


def check_mode(mode: str, samples: int = 1) -> None:
    """``mode`` is one of :data:`INFERENCE_MODES`; ``mc`` needs ``samples >= 1``."""
    if mode not in INFERENCE_MODES:
        raise ValueError(f"unknown inference mode {mode!r}; valid: {', '.join(INFERENCE_MODES)}")
    if mode == MC:
        validate.integer("mc inference", "samples", samples)


def predict(net: "Net", inputs: Tensor, states: Sequence[State] | None = None, *,
            mode: str = DETERMINISTIC, samples: int = 10,
            generator: torch.Generator | None = None, regression: bool = False
            ) -> tuple[Tensor, list[State]]:
    """Predictions ``[B, T, C]`` under an inference mode, and the final states.

    ``deterministic``: expected masks. ``mc``: the average over ``samples`` independently
    sampled mask sets (Gal eq. 4). ``train-mode``: one sampled mask set. Predictions are
    softmax probabilities, or raw outputs when ``regression``. ``states`` carries the
    recurrent state across a stream: one state for ``deterministic``/``train-mode``, one per
    sample for ``mc`` (each MC sample is its own network); the new states are returned.
    """
    check_mode(mode, samples)
    k = samples if mode == MC else 1
    states = list(states) if states is not None else [None] * k
    if len(states) != k:
        raise ValueError(f"predict got {len(states)} states for {k} sample(s)")
    total, new_states = None, []
    with torch.no_grad():
        for s in states:
            out, h = net(inputs, s, stochastic=mode != DETERMINISTIC, generator=generator)
            p = out if regression else torch.softmax(out, dim=-1)
            total = p if total is None else total + p
            new_states.append(h)
    assert total is not None
    return total / k, new_states


def _dropout_scalings(plan: MaskPlan) -> set[str]:
    return {e.spec.scaling for e in plan.entries if e.spec.kind == "dropout"}


def net_scaling(net: "Net") -> str:
    """The net's scaling convention: ``inverted``, ``expectation``, ``mixed`` or ``none``
    (no dropout site)."""
    s = _dropout_scalings(net.mask_plan())
    if not s:
        return "none"
    return s.pop() if len(s) == 1 else "mixed"


def _flip(scaling: str) -> str:
    return {"inverted": "expectation", "expectation": "inverted"}.get(scaling, scaling)


def mode_scaling(net: "Net", mode: str) -> str:
    """The convention whose test-time factor a mode uses (the ``scaling`` column)."""
    s = net_scaling(net)
    return _flip(s) if mode == OTHER_SCALING else s


def expected_masks(net: "Net", *, other: bool = False, device: torch.device | None = None,
                   dtype: torch.dtype = torch.float32) -> Masks:
    """Deterministic masks (0-dim tensors); ``other=True`` flips every dropout site's
    scaling convention before taking its test-time factor."""
    plan = net.mask_plan()
    out: Masks = {}
    for e in plan.entries:
        spec = e.spec
        if other and spec.kind == "dropout" and spec.scaling in SCALINGS:
            spec = replace(spec, scaling=_flip(spec.scaling))
        out[e.key] = torch.tensor(spec.test_value, dtype=dtype, device=device)
    return out


def check_modes(owner: str, modes: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    if not isinstance(modes, tuple) or not modes:
        raise ValueError(f"{owner}: modes must be a non-empty tuple, got {modes!r}")
    bad = [m for m in modes if m not in allowed]
    if bad:
        raise ValueError(f"{owner}: unknown mode {bad[0]!r}; valid: {', '.join(allowed)}")


def mode_masks(net: "Net", mode: str, T: int, B: int, *, generator: torch.Generator,
               device: torch.device, dtype: torch.dtype = torch.float32) -> Masks:
    """One mask set for ``mode`` (``train-mode``/``mc`` draw a fresh sample each call)."""
    if mode == DETERMINISTIC:
        return expected_masks(net, device=device, dtype=dtype)
    if mode == OTHER_SCALING:
        return expected_masks(net, other=True, device=device, dtype=dtype)
    if mode in (TRAIN_MODE, MC):
        return net.mask_plan().sample(T, B, generator=generator, device=device, dtype=dtype)
    raise ValueError(f"unknown inference mode {mode!r}; valid: {', '.join(MODES)}")
