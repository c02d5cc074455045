"""``impulse``: perturb the input (or the state) at step t0 and follow the difference.

Two runs share every mask (the same sample in training mode), so ``||delta h_t||`` (and the
change of every other state of the cell, ``delta_<state>``: ``delta_c`` for the LSTM) for
``t >= t0`` isolate how long the perturbation is remembered; the fitted log-slope of each
over ``t > t0`` gives a half-life in steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from memloss.core import validate
from memloss.models import Net

from .base import PROBES, Probe, ProbeResult, Quantity, checked, make_frame, maybe
from .data import modes_field, probe_context, split_field
from .fit import half_life, log_slope
from memloss.models.inference import DETERMINISTIC, OTHER_SCALING, TRAIN_MODE, mode_masks, \
    mode_scaling
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
    title: ClassVar[str] = "How long a perturbation is remembered"
    rank: ClassVar[int] = 30
    quantities: ClassVar[dict[str, Quantity]] = {
        "delta_h": Quantity("change of h_t after a perturbation", "L2 norm"),
        "delta_c": Quantity("change of c_t after a perturbation", "L2 norm"),
        "delta_output": Quantity("change of the output after a perturbation", "L2 norm of logits"),
        "delta_h_half_life": Quantity("half-life of the change of h", "steps"),
        "delta_c_half_life": Quantity("half-life of the change of c", "steps"),
        "delta_output_half_life": Quantity("half-life of the change of the output", "steps"),
    }
    t0: int | None = checked(None, maybe(validate.integer), minimum=0)
    perturb: Literal["input", "state"] = checked("input", validate.choice, ("input", "state"))
    eps: float = checked(1.0, validate.number, 0.0, low_open=True)
    samples: int = checked(8, validate.integer)
    batch_size: int = checked(32, validate.integer)
    split: str = checked("test", split_field)
    modes: tuple[str, ...] = checked((DETERMINISTIC, OTHER_SCALING, TRAIN_MODE), modes_field,
                                     DETERMINISTIC, OTHER_SCALING, TRAIN_MODE)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        return {"samples": 2, "batch_size": 8}

    @torch.no_grad()
    def _deltas(self, view: Net, x: Tensor, masks: dict, t0: int, gen: torch.Generator
                ) -> dict[str, Tensor]:
        """Per-step mean norms of the differences of every state of the cell
        (``delta_<state>``), ``[T - t0, L]``, and of the output (``delta_output``: [T-t0])."""
        base = unroll(view, x, masks)
        before = base.stacked()
        if self.perturb == "input":
            x2 = perturb_inputs(view, x, t0, self.eps, gen)
            hx = None if t0 == 0 else base.states[t0 - 1]
            pert = unroll(view, x2[:, t0:], masks, hx, start=t0)
            after = pert.stacked()
            out2 = pert.outputs
        else:
            dims = (0, 2)
            moved = {name: v + self.eps * _unit(tuple(v.shape), gen, dims, v)
                     for name, v in split_state(view, base.states[t0]).items()}
            rest = unroll(view, x[:, t0 + 1:], masks, with_state(view, base.states[t0], moved),
                          start=t0 + 1) if t0 + 1 < x.shape[1] else None
            tail = rest.stacked() if rest else {}
            after = {name: torch.cat([v[None]] + ([tail[name]] if rest else []))
                     for name, v in moved.items()}
            first = readout(view, moved["h"], step_masks(view, masks, t0))[:, None]
            out2 = torch.cat([first] + ([rest.outputs] if rest else []), dim=1)
        out = {f"delta_{name}": (after[name] - v[t0:]).norm(dim=-1).mean(-1)
               for name, v in before.items()}
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
