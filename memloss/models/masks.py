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

import functools
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from torch import Tensor

from .schemes import SiteSpec
from .sites import layer_sites, step_sites

__all__ = ["MaskEntry", "MaskPlan", "Masks", "LayerMasks", "ResolvedMasks", "tie_holds"]

Masks = dict[str, torch.Tensor]


class ResolvedMasks(dict):
    """The masks of one forward pass, already validated against the plan and on the input's
    device and dtype: a layer given these uses them as they are (resolved once per forward)."""


def _event(spec: SiteSpec, mask: Tensor) -> Tensor:
    """Where a sampled mask's draw fell below its rate (``u < p``): dropped units of a
    dropout mask, zoned-out units of a zoneout mask."""
    return mask == 1 if spec.kind == "zoneout" else mask == 0


def tie_holds(spec: SiteSpec, mask: Tensor, source: SiteSpec, source_mask: Tensor) -> Tensor:
    """Per element, whether a tied mask agrees with its source as :meth:`MaskPlan.sample`
    ties them (:class:`~memloss.models.schemes.SiteSpec` ``tied_to``): with ``tied_inverse``
    its event is the source's non-event; otherwise one event implies the other (the
    lower rate's implies the higher's; at equal rates they are equal)."""
    mine, theirs = _event(spec, mask), _event(source, source_mask)
    if spec.tied_inverse:
        return mine != theirs
    if spec.p == source.p:
        return mine == theirs
    return ~mine | theirs if spec.p < source.p else ~theirs | mine


@functools.lru_cache(maxsize=None)
def _mask_form(spec: SiteSpec, dtype: torch.dtype) -> tuple[bool, float] | None:
    """A training mask of ``spec`` is 0 where the unit is dropped (dropout) or kept
    (zoneout) and one value elsewhere: (whether its zeros are where the unit is kept, that
    value),
    computed as ``train_value`` computes it (IEEE arithmetic gives a 0-dim tensor the value
    of every element of a large one); None where ``train_value`` has no such form."""
    one = float(spec.train_value(torch.ones((), dtype=dtype)))
    zero = float(spec.train_value(torch.zeros((), dtype=dtype)))
    if zero == 0:
        return False, one
    if one == 0:
        return True, zero
    return None


def _train_mask(spec: SiteSpec, u: Tensor, rate: float, below: bool, dtype: torch.dtype,
                in_place: bool) -> Tensor:
    """``spec.train_value(keep)`` as ``dtype`` for the keep indicator ``keep = u < rate``
    (``below``) or ``u >= rate``, bit for bit, in two passes over ``u``'s storage (a copy
    of it unless ``in_place``) where ``dtype`` is ``u``'s (:func:`_mask_form`: the indicator
    of where the mask is not 0, times its value). The plain form (compare, convert, scale:
    four passes, two new tensors) took 125 us against 27 for a ``[35, 32, 64]`` mask and
    6.4 ms against 0.2 for ``[35, 32, 650]``, more than ``torch.rand`` itself
    (docs/performance.md)."""
    # torch.compile and torch.export trace the plain ops (the value is read as a number)
    form = None if torch.compiler.is_compiling() else _mask_form(spec, dtype)
    if form is None:
        keep = (u < rate) if below else (u >= rate)
        return spec.train_value(keep.to(dtype))
    zero_where_kept, value = form
    lt = below != zero_where_kept  # the mask is not 0 where u < rate
    if u.dtype == dtype:  # a copy where u is read again (a tie's source): still faster
        base = u if in_place else u.clone()  # than a comparison into bools and a conversion
        mask = base.lt_(rate) if lt else base.ge_(rate)
    else:
        mask = (torch.lt(u, rate) if lt else torch.ge(u, rate)).to(dtype)
    return mask if value == 1 else mask.mul_(value)


@dataclass(frozen=True)
class MaskEntry:
    key: str
    spec: SiteSpec
    shape: tuple[int, ...]  # per-sample shape, without T and B

    @property
    def source_key(self) -> str | None:
        """The key of the entry whose uniforms this one reads again (its layer's site
        ``spec.tied_to``); None where it draws its own."""
        if self.spec.tied_to is None:
            return None
        return f"{self.key.rsplit('.', 1)[0]}.{self.spec.tied_to}"

    def full_shape(self, T: int, B: int) -> tuple[int, ...]:
        if self.spec.sampling == "forward":
            return self.shape
        if self.spec.sampling == "step":
            return (T, B) + self.shape
        return (B,) + self.shape


@dataclass(frozen=True)
class LayerMasks:
    """One layer's masks by site, as the execution paths read them.

    ``values`` maps a site to its tensor (per step ``[T, B, N]``, per sequence ``[B, N]``,
    per gate with a ``G`` axis before ``N``, or 0-dim expectations); ``step`` names the
    sites whose tensor has a time axis, ``per_gate`` those with one mask per gate block.
    """

    values: dict[str, Tensor] = field(default_factory=dict)
    step: frozenset[str] = frozenset()
    per_gate: frozenset[str] = frozenset()

    def has(self, site: str) -> bool:
        return site in self.values

    def at(self, site: str, t: int) -> Tensor | None:
        """The mask of ``site`` at step ``t`` (None where the site is unused)."""
        m = self.values.get(site)
        if m is None or site not in self.step:
            return m
        return m[t]

    def steps(self, site: str, T: int) -> Sequence[Tensor | None]:
        """The mask of every step (views, no copies); ``None`` where the site is unused."""
        m = self.values.get(site)
        if m is not None and site in self.step:
            return m.unbind(0)
        return (m,) * T

    def step_masks(self, T: int) -> list[dict[str, Tensor]]:
        """For each of ``T`` steps, the masks the cell's step reads (the sites acting in the
        step), by site name; the per-step ones are views of their step."""
        sites = [s for s in step_sites() if s in self.values]
        columns = [self.steps(s, T) for s in sites]
        return [{s: col[t] for s, col in zip(sites, columns)} for t in range(T)]

    @property
    def rec_per_gate(self) -> bool:
        """True when the recurrent site has a sampled mask per gate block."""
        m = self.values.get("recurrent")
        return "recurrent" in self.per_gate and m is not None and m.dim() > 0

    def gate_major(self) -> "LayerMasks":
        """The same masks with per-gate recurrent masks laid out ``[.., G, B, H]`` (for a
        batched product over gates), without the ``input`` and ``weight`` sites (they act
        outside a fused time loop)."""
        values = {k: v for k, v in self.values.items() if k not in ("input", "weight")}
        if self.rec_per_gate:
            values["recurrent"] = values["recurrent"].transpose(-3, -2)
        return LayerMasks(values, self.step, self.per_gate)

    def recurrent_all(self) -> Tensor | None:
        """The recurrent mask broadcastable to ``[T, B, H]`` (gate-major per gate:
        ``[T, G, B, H]``)."""
        m = self.values.get("recurrent")
        if m is None or m.dim() == 0 or "recurrent" in self.step:
            return m
        return m.unsqueeze(0)


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
        """Draw every mask of the plan once (training-mode masks): one ``torch.rand`` per
        drawing entry, in plan order, and each mask ``spec.train_value`` of its keep
        indicator (:func:`_train_mask`: the same values, computed in place)."""
        gen_device = generator.device if generator is not None else torch.device("cpu")
        # the entries whose uniforms a tied entry reads again: those are not overwritten
        sources = {e.source_key for e in self.entries} - {None}
        draws: dict[str, tuple[torch.Tensor, float]] = {}
        out: Masks = {}
        for e in self.entries:  # the entries that draw, in plan order
            if e.spec.tied_to is not None:
                continue
            u = torch.rand(e.full_shape(T, B), generator=generator, device=gen_device)
            draws[e.key] = (u, e.spec.p)
            out[e.key] = _train_mask(e.spec, u, e.spec.p, False, dtype,
                                     e.key not in sources).to(device or gen_device)
        for e in self.entries:  # tied entries reuse their source's uniforms (SiteSpec.tied_to)
            if e.spec.tied_to is not None:
                u, p_source = draws[e.source_key]  # type: ignore[index]
                below, rate = (True, p_source) if e.spec.tied_inverse else (False, e.spec.p)
                out[e.key] = _train_mask(e.spec, u, rate, below, dtype,
                                         False).to(device or gen_device)
        return out

    def expected(self, *, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> Masks:
        """Deterministic-inference masks: every mask replaced by its expectation (0-dim)."""
        return {e.key: torch.tensor(e.spec.test_value, dtype=dtype, device=device)
                for e in self.entries}

    def layer(self, masks: Mapping[str, Tensor], k: "int | str") -> LayerMasks:
        """Layer ``k``'s masks (keys ``l{k}.{site}``; a string ``k`` is the whole prefix, e.g.
        ``l0_reverse`` for the reverse direction) as the execution paths read them."""
        vals, step, gate = {}, set(), set()
        prefix = f"l{k}" if isinstance(k, int) else k
        for site in layer_sites():
            key = f"{prefix}.{site}"
            m = masks.get(key)
            if m is None:
                continue
            entry = self.get(key)
            if entry is None:
                raise ValueError(f"mask {key!r} is not part of this model's plan {self.keys()}")
            vals[site] = m
            if entry.spec.sampling == "step" and m.dim() > 0:
                step.add(site)
            if entry.spec.per_gate:
                gate.add(site)
        return LayerMasks(vals, frozenset(step), frozenset(gate))

    def validate(self, masks: Mapping[str, torch.Tensor], T: int, B: int) -> None:
        """Check explicitly passed masks: every key present, no unknown key, right shapes."""
        if not isinstance(masks, Mapping):
            raise ValueError(f"masks must be a dict of tensors keyed {self.keys()}, got a "
                             f"{type(masks).__name__}; sample one with mask_plan().sample(T, B)")
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
