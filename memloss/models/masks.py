"""Mask plans: where each mask goes, its shape, and sampling from an explicit generator.

Masks are plain tensors in a flat dict keyed ``"embedding"``, ``"output"`` or
``"l{layer}.{site}"``. Shapes (``N`` = the site's width, ``G`` = gate blocks):

* per step: ``[T, B, N]`` (per gate: ``[T, B, G, N]``)
* per sequence: ``[B, N]`` (per gate: ``[B, G, N]``)
* per forward (``weight``): ``[G*H, H]``; ``embedding``: ``[B, V]`` over word types.

Sampled masks already carry the scaling convention (e.g. ``keep / (1-p)``); deterministic
(expected) masks are 0-dim tensors. Sampling draws uniforms on the generator's device
(CPU by default) and then moves them, so one seed gives the same masks on CPU and CUDA.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

from .schemes import SiteSpec

__all__ = ["MaskEntry", "MaskPlan", "Masks"]

Masks = dict[str, torch.Tensor]


@dataclass(frozen=True)
class MaskEntry:
    key: str
    spec: SiteSpec
    shape: tuple[int, ...]  # per-sample shape, without T and B

    def full_shape(self, T: int, B: int) -> tuple[int, ...]:
        if self.spec.sampling == "forward":
            return self.shape
        if self.spec.sampling == "step":
            return (T, B) + self.shape
        return (B,) + self.shape


@dataclass(frozen=True)
class MaskPlan:
    """The ordered list of mask entries of a model (fixed by scheme, cell and sizes)."""

    entries: tuple[MaskEntry, ...]

    def __bool__(self) -> bool:
        return bool(self.entries)

    def keys(self) -> list[str]:
        return [e.key for e in self.entries]

    def get(self, key: str) -> MaskEntry | None:
        for e in self.entries:
            if e.key == key:
                return e
        return None

    def sample(self, T: int, B: int, *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> Masks:
        """Draw every mask of the plan once (training-mode masks)."""
        gen_device = generator.device if generator is not None else torch.device("cpu")
        keeps: dict[str, torch.Tensor] = {}
        out: Masks = {}
        for e in self.entries:
            if e.spec.tied_to is not None:
                continue
            u = torch.rand(e.full_shape(T, B), generator=generator, device=gen_device)
            keep = (u >= e.spec.p).to(dtype)
            keeps[e.key] = keep
            out[e.key] = e.spec.train_value(keep).to(device or gen_device)
        for e in self.entries:
            if e.spec.tied_to is not None:
                layer = e.key.rsplit(".", 1)[0]
                out[e.key] = (1.0 - keeps[f"{layer}.{e.spec.tied_to}"]).to(device or gen_device)
        return out

    def expected(self, *, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> Masks:
        """Deterministic-inference masks: every mask replaced by its expectation (0-dim)."""
        return {e.key: torch.tensor(e.spec.test_value, dtype=dtype, device=device)
                for e in self.entries}

    def validate(self, masks: Mapping[str, torch.Tensor], T: int, B: int) -> None:
        """Check explicitly passed masks: every key present, no unknown key, right shapes."""
        missing = [k for k in self.keys() if k not in masks]
        if missing:
            raise ValueError(f"masks are missing {missing}; expected keys {self.keys()} "
                             "(sample them with layer.mask_plan().sample(T, B))")
        unknown = sorted(set(masks) - set(self.keys()))
        if unknown:
            raise ValueError(f"masks has unknown keys {unknown}; this model's scheme uses "
                             f"{self.keys()}")
        for e in self.entries:
            m = masks[e.key]
            if not isinstance(m, torch.Tensor):
                raise ValueError(f"mask {e.key!r} must be a tensor, got {type(m).__name__}")
            if m.dim() == 0:
                continue
            want = e.full_shape(T, B)
            if tuple(m.shape) != want:
                raise ValueError(f"mask {e.key!r} has shape {tuple(m.shape)}, expected {want} "
                                 f"({e.spec.sampling} sampling, T={T}, B={B})")
