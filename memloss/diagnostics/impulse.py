"""``impulse``: perturb the input (or the state) at step t0 and follow the difference.

Two runs share every mask (the same sample in training mode), so ``||delta h_t||`` and
``||delta c_t||`` for ``t >= t0`` isolate how long the perturbation is remembered; the
fitted log-slope of ``||delta h_t||`` over ``t > t0`` gives a half-life in steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from memloss.core import validate
from memloss.models import Net

from .base import PROBES, Probe, ProbeResult, make_frame
from .data import check_split, probe_context
from .fit import half_life, log_slope
from memloss.models.inference import DETERMINISTIC, OTHER_SCALING, TRAIN_MODE, check_modes, mode_masks, mode_scaling
from .unroll import readout, split_state, step_masks, unroll, with_state

__all__ = ["Impulse", "perturb_inputs"]


def _unit(shape: tuple[int, ...], generator: torch.Generator, dims: tuple[int, ...],
          like: Tensor) -> Tensor:
    """Random directions of unit norm over ``dims``, drawn and normalised in ``like``'s dtype
    (then moved to its device)."""
    v = torch.randn(shape, generator=generator, dtype=like.dtype)
    return (v / v.norm(dim=dims, keepdim=True).clamp_min(1e-12)).to(like.device)


def perturb_inputs(net: Net, x: Tensor, t0: int, eps: float, generator: torch.Generator) -> Tensor:
    """A copy of ``x`` changed at step ``t0``: token ids replaced by a different random id,
    float features shifted by ``eps`` times a random unit vector (per sequence)."""
    x2 = x.clone()
    if net.embedding is not None:
        V = net.embedding.num_embeddings
        shift = torch.randint(1, V, (x.shape[0],), generator=generator).to(x.device)
        x2[:, t0] = (x[:, t0] + shift) % V
    else:
        x2[:, t0] = x[:, t0] + eps * _unit(tuple(x[:, t0].shape), generator, (-1,), x)
    return x2


@PROBES.register("impulse", "perturb the input or state at t0 and follow ||delta h_t||, "
                 "||delta c_t|| per inference mode (same masks in both runs); half-life in steps")
@dataclass(frozen=True)
class Impulse(Probe):
    """Args: ``t0`` the perturbed step (default T//4); ``perturb`` "input" (token swapped or
    features shifted by ``eps``) or "state" (h and c after step t0 shifted by ``eps``
    times a random unit direction); ``samples`` training-mode mask draws (K)."""

    name: ClassVar[str] = "impulse"
    t0: int | None = None
    perturb: Literal["input", "state"] = "input"
    eps: float = 1.0
    samples: int = 8
    batch_size: int = 32
    split: str = "test"
    modes: tuple[str, ...] = (DETERMINISTIC, OTHER_SCALING, TRAIN_MODE)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        return {"samples": 2, "batch_size": 8}

    def __post_init__(self) -> None:
        validate.integer(self.name, "samples", self.samples)
        validate.integer(self.name, "batch_size", self.batch_size)
        check_split(self.name, self.split)
        check_modes(self.name, self.modes, (DETERMINISTIC, OTHER_SCALING, TRAIN_MODE))
        if self.t0 is not None:
            validate.integer(self.name, "t0", self.t0, minimum=0)
        if self.perturb not in ("input", "state"):
            raise ValueError(f"{self.name}: perturb must be 'input' or 'state', got {self.perturb!r}")
        if not (isinstance(self.eps, (int, float)) and self.eps > 0):
            raise ValueError(f"{self.name}: eps must be a number > 0, got {self.eps!r}")

    @torch.no_grad()
    def _deltas(self, view: Net, x: Tensor, masks: dict, t0: int, gen: torch.Generator
                ) -> dict[str, Tensor]:
        """Per-step mean norms of the differences, ``[T - t0, L]`` (``delta_output``: [T-t0])."""
        base = unroll(view, x, masks)
        hb, cb = base.stacked()
        if self.perturb == "input":
            x2 = perturb_inputs(view, x, t0, self.eps, gen)
            hx = None if t0 == 0 else base.states[t0 - 1]
            pert = unroll(view, x2[:, t0:], masks, hx, start=t0)
            h2, c2 = pert.stacked()
            out2 = pert.outputs
        else:
            h, c = split_state(view, base.states[t0])
            dims = (0, 2)
            h = h + self.eps * _unit(tuple(h.shape), gen, dims, h)
            c = None if c is None else c + self.eps * _unit(tuple(c.shape), gen, dims, c)
            rest = unroll(view, x[:, t0 + 1:], masks, with_state(view, base.states[t0], h, c),
                          start=t0 + 1) \
                if t0 + 1 < x.shape[1] else None
            h2 = torch.cat([h[None]] + ([rest.stacked()[0]] if rest else []))
            c2 = None if c is None else torch.cat([c[None]] + ([rest.stacked()[1]] if rest else []))
            first = readout(view, h, step_masks(view, masks, t0))[:, None]
            out2 = torch.cat([first] + ([rest.outputs] if rest else []), dim=1)
        out = {"delta_h": (h2 - hb[t0:]).norm(dim=-1).mean(-1)}
        if cb is not None and c2 is not None:
            out["delta_c"] = (c2 - cb[t0:]).norm(dim=-1).mean(-1)
        out["delta_output"] = (out2 - base.outputs[:, t0:]).norm(dim=-1).mean(0)[:, None]
        return out

    def __call__(self, net: Net, task: Any, *, generator: torch.Generator | None = None
                 ) -> ProbeResult:
        gen, device, view, batch = probe_context(net, task, self.split, self.batch_size, generator,
                                                 self.name)
        B, T = batch.inputs.shape[:2]
        t0 = T // 4 if self.t0 is None else self.t0
        if t0 >= T:
            raise ValueError(f"{self.name}: t0={t0} is not inside the sequence (length {T}); "
                             "pick a smaller t0")
        rows: list[dict[str, Any]] = []
        summary: dict[str, Any] = {"t0": t0, "perturb": self.perturb, "length": T,
                                   "half_life": {}, "log_slope": {}}
        for mode in self.modes:
            draws = self.samples if mode == TRAIN_MODE else 1
            runs = [self._deltas(view, batch.inputs,
                                 mode_masks(net, mode, T, B, generator=gen, device=device), t0, gen)
                    for _ in range(draws)]
            sc = mode_scaling(net, mode)
            summary["half_life"][mode], summary["log_slope"][mode] = {}, {}
            for q in runs[0]:
                stack = torch.stack([r[q] for r in runs])
                mean, std = stack.mean(0), stack.std(0, correction=0)
                per_layer = q != "delta_output"
                for i in range(mean.shape[0]):
                    for layer in range(mean.shape[1]):
                        rows.append(dict(mode=mode, scaling=sc, quantity=q,
                                         layer=layer if per_layer else None, t=t0 + i,
                                         value=float(mean[i, layer]), std=float(std[i, layer]),
                                         t0=t0, perturb=self.perturb))
                # fit over t > t0 (the step after the perturbation onwards), last layer
                ts = list(range(t0 + 1, T))
                slope = log_slope(ts, mean[1:, -1].tolist())
                summary["log_slope"][mode][q] = slope
                summary["half_life"][mode][q] = half_life(slope)
                rows.append(dict(mode=mode, scaling=sc, quantity=f"{q}_half_life",
                                 layer=mean.shape[1] - 1 if per_layer else None,
                                 value=half_life(slope), t0=t0, perturb=self.perturb))
        frame = make_frame(self.name, net, rows, extra_columns=("std", "t0", "perturb"))
        return ProbeResult(frame, summary)
