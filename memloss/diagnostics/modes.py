"""Inference modes as explicit mask sets, so probes can hold masks fixed and replay them.

Modes (the ``mode`` column of every probe frame):

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

import torch

from memloss.models import MaskPlan, Masks, Net
from memloss.models.schemes import SCALINGS

__all__ = ["MODES", "DETERMINISTIC", "OTHER_SCALING", "TRAIN_MODE", "MC", "net_scaling",
           "mode_scaling", "expected_masks", "mode_masks", "check_modes"]

DETERMINISTIC, OTHER_SCALING, TRAIN_MODE, MC = "deterministic", "other-scaling", "train-mode", "mc"
MODES = (DETERMINISTIC, OTHER_SCALING, TRAIN_MODE, MC)


def _dropout_scalings(plan: MaskPlan) -> set[str]:
    return {e.spec.scaling for e in plan.entries if e.spec.kind == "dropout"}


def net_scaling(net: Net) -> str:
    """The net's scaling convention: ``inverted``, ``expectation``, ``mixed`` or ``none``
    (no dropout site)."""
    s = _dropout_scalings(net.mask_plan())
    if not s:
        return "none"
    return s.pop() if len(s) == 1 else "mixed"


def _flip(scaling: str) -> str:
    return {"inverted": "expectation", "expectation": "inverted"}.get(scaling, scaling)


def mode_scaling(net: Net, mode: str) -> str:
    """The convention whose test-time factor a mode uses (the ``scaling`` column)."""
    s = net_scaling(net)
    return _flip(s) if mode == OTHER_SCALING else s


def expected_masks(net: Net, *, other: bool = False, device: torch.device | None = None,
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


def mode_masks(net: Net, mode: str, T: int, B: int, *, generator: torch.Generator,
               device: torch.device, dtype: torch.dtype = torch.float32) -> Masks:
    """One mask set for ``mode`` (``train-mode``/``mc`` draw a fresh sample each call)."""
    if mode == DETERMINISTIC:
        return expected_masks(net, device=device, dtype=dtype)
    if mode == OTHER_SCALING:
        return expected_masks(net, other=True, device=device, dtype=dtype)
    if mode in (TRAIN_MODE, MC):
        return net.mask_plan().sample(T, B, generator=generator, device=device, dtype=dtype)
    raise ValueError(f"unknown inference mode {mode!r}; valid: {', '.join(MODES)}")
