"""Inference: how a net is run under each mode, for the trainer, the evaluator and the probes.

:class:`Runner` runs a net batch after batch under one mode (what evaluation and the probes
score); :func:`predict` is one call of it; :func:`mode_masks` gives the explicit mask set
of a mode, so that probes can hold masks fixed and replay them. Modes (the ``mode`` column
of every probe frame):

* ``deterministic``: every mask replaced by its expectation under the net's own scaling
  convention (what ``Net.predict_proba(mode="deterministic")`` does);
* ``other-scaling``: deterministic, but every dropout site uses the *other* convention's
  test-time factor (``1-p`` for a net trained with ``inverted`` masks, ``1`` for one
  trained with ``expectation`` masks); this is Semeniuta's scaling mismatch made explicit;
* ``train-mode``: masks sampled as in training (one network);
* ``mc``: the average of the predictions of K sampled networks (Gal eq. 4).

A sampled network is one draw of the masks, fixed for the whole evaluation (Gal eq. 4:
``p(y|x) ~ 1/K sum_k p(y|x, w_k)``): its per-forward (weight) masks are drawn once, its
per-sequence masks once per sequence, so a sequence streamed over many batches (truncated
BPTT, ``Batch.carry``) keeps them from its first batch to its last; per-step masks are new
at every step by definition. Masks and probabilities are computed in the net's dtype.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor

from memloss.core import bounds, validate

from .masks import MaskPlan, Masks
from .modes import DETERMINISTIC, INFERENCE_MODES, MC, MODES, OTHER_SCALING, TRAIN_MODE
from .schemes import SCALINGS

if TYPE_CHECKING:
    from .net import Net

__all__ = ["INFERENCE_MODES", "MODES", "DETERMINISTIC", "OTHER_SCALING", "TRAIN_MODE", "MC",
           "Runner", "predict", "mean_prediction", "net_scaling", "mode_scaling",
           "expected_masks", "mode_masks", "check_modes", "check_mode", "net_dtype",
           "state_batch"]

_STOCHASTIC = (TRAIN_MODE, MC)

State = Any


def check_mode(mode: str, samples: int = 1, allowed: tuple[str, ...] = INFERENCE_MODES) -> None:
    """``mode`` is one of ``allowed``; ``mc`` needs ``samples >= 1``."""
    if mode not in allowed:
        raise ValueError(f"unknown inference mode {mode!r}; valid: {', '.join(allowed)}")
    if mode == MC:
        validate.integer("mc inference", "samples", samples, maximum=bounds.MAX_SAMPLES)


def net_dtype(net: "Net") -> torch.dtype:
    """The floating dtype of the net's parameters (float32 for a net without any)."""
    for p in net.parameters():
        return p.dtype
    return torch.float32


def state_batch(state: State) -> int | None:
    """The batch size of a recurrent state (``[L, B, H]`` or a tuple of such), None if none."""
    if state is None:
        return None
    first = state[0] if isinstance(state, (tuple, list)) else state
    return int(first.shape[1])


def mean_prediction(outputs: Sequence[Tensor], regression: bool = False) -> Tensor:
    """The average over networks of the softmax probabilities (raw outputs when
    ``regression``), in the outputs' dtype (Gal eq. 4 for several networks)."""
    total = None
    for out in outputs:
        p = out if regression else torch.softmax(out, dim=-1)
        total = p if total is None else total + p
    if total is None:
        raise ValueError("mean_prediction needs at least one network's outputs")
    return total / len(outputs)


class Runner:
    """A net run batch after batch under one inference mode.

    It holds K networks (K = ``samples`` for ``mc``, else 1), each with its recurrent
    state and, in the sampled modes, its masks. ``runner(inputs, carry=...)`` returns each
    network's raw outputs ``[B, T, C]`` (``lengths``: see :meth:`Net.forward`). With ``carry=True`` and the same batch size as the
    previous call, the batch continues the previous one's sequences: every network keeps
    its state and every mask that is not drawn per step. Otherwise states restart from
    zero and per-sequence masks are drawn for the new sequences. Per-forward (weight)
    masks are drawn once and kept for the whole run: network k is one fixed draw of the
    masks (Gal eq. 4). Masks come from ``generator`` (default: a fresh one seeded 0).
    """

    def __init__(self, net: "Net", mode: str, *, samples: int = 10,
                 generator: torch.Generator | None = None) -> None:
        check_mode(mode, samples, MODES)
        self.net, self.mode = net, mode
        self.k = samples if mode == MC else 1
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.states: list[State] = [None] * self.k
        self.masks: list[Masks | None] = [None] * self.k
        self._fixed: Masks | None = None  # deterministic masks, computed once

    def _masks(self, i: int, T: int, B: int, device: torch.device, keep_sequences: bool) -> Masks:
        if self.mode not in _STOCHASTIC:
            if self._fixed is None:
                self._fixed = mode_masks(self.net, self.mode, T, B, generator=self.generator,
                                         device=device)
            return self._fixed
        old = self.masks[i]
        keep = None if old is None else {
            k: v for k, v in old.items()
            if keep_sequences or _sampling(self.net.mask_plan(), k) == "forward"}
        m = mode_masks(self.net, self.mode, T, B, generator=self.generator, device=device,
                       keep=keep)
        self.masks[i] = m
        return m

    def __call__(self, inputs: Tensor, *, carry: bool = False,
                 lengths: Tensor | None = None) -> list[Tensor]:
        B, T = int(inputs.shape[0]), int(inputs.shape[1])
        cont = carry and state_batch(self.states[0]) == B
        outs = []
        with torch.no_grad():
            for i in range(self.k):
                masks = self._masks(i, T, B, inputs.device, cont)
                out, h = self.net(inputs, self.states[i] if cont else None, masks=masks,
                                  lengths=lengths)
                self.states[i] = h
                outs.append(out)
        return outs


def _sampling(plan: MaskPlan, key: str) -> str | None:
    entry = plan.get(key)
    return None if entry is None else entry.spec.sampling


def predict(net: "Net", inputs: Tensor, states: Sequence[State] | None = None, *,
            mode: str = DETERMINISTIC, samples: int = 10,
            generator: torch.Generator | None = None, regression: bool = False,
            lengths: Tensor | None = None) -> tuple[Tensor, list[State]]:
    """Predictions ``[B, T, C]`` under an inference mode for one batch, and the final states.

    ``deterministic``: expected masks. ``mc``: the average over ``samples`` independently
    sampled mask sets (Gal eq. 4). ``train-mode``: one sampled mask set. Predictions are
    softmax probabilities, or raw outputs when ``regression``. ``states`` carries the
    recurrent state from an earlier batch: one state for ``deterministic``/``train-mode``,
    one per sample for ``mc``. A stream evaluated batch after batch keeps its sampled
    networks fixed only through one :class:`Runner`; this function draws new masks.
    ``lengths``: each sequence's real steps in a right-padded batch (``Net.forward``).
    """
    check_mode(mode, samples)
    k = samples if mode == MC else 1
    states = list(states) if states is not None else [None] * k
    if len(states) != k:
        raise ValueError(f"predict got {len(states)} states for {k} sample(s)")
    runner = Runner(net, mode, samples=samples, generator=generator)
    runner.states = states
    outs = runner(inputs, carry=any(s is not None for s in states), lengths=lengths)
    return mean_prediction(outs, regression), runner.states


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
                   dtype: torch.dtype | None = None) -> Masks:
    """Deterministic masks (0-dim tensors in ``dtype``, default the net's); ``other=True``
    flips every dropout site's scaling convention before taking its test-time factor."""
    dtype = net_dtype(net) if dtype is None else dtype
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
               device: torch.device, dtype: torch.dtype | None = None,
               keep: Masks | None = None) -> Masks:
    """One mask set for ``mode``, in ``dtype`` (default: the net's). ``train-mode``/``mc``
    draw a fresh sample each call; ``keep`` (an earlier draw) supplies every mask it holds
    that is not drawn per step and still has the right shape, so that a network keeps its
    per-sequence and per-forward masks across the batches of a stream."""
    dtype = net_dtype(net) if dtype is None else dtype
    if mode == DETERMINISTIC:
        return expected_masks(net, device=device, dtype=dtype)
    if mode == OTHER_SCALING:
        return expected_masks(net, other=True, device=device, dtype=dtype)
    if mode not in _STOCHASTIC:
        raise ValueError(f"unknown inference mode {mode!r}; valid: {', '.join(MODES)}")
    plan = net.mask_plan()
    masks = plan.sample(T, B, generator=generator, device=device, dtype=dtype)
    for key, old in (keep or {}).items():
        entry = plan.get(key)
        if entry is None or entry.spec.sampling == "step" or key not in masks:
            continue
        if old.shape == masks[key].shape:
            masks[key] = old
    return masks
