"""The mask sites: every place of a recurrence where a scheme can put a mask.

One registry, :data:`SITES`, in step order. Everything that needs to know about sites asks
it: which sites a cell has (``needs``), which masks a layer plans and in what order (the
order masks are drawn from a generator), where each mask acts (``acts``), which ones act
inside the time loop (those rule out torch's own kernels), how wide each mask is, and which
sites carry a state of their own across steps (``carries``). The sites that act in the step
are read by the cells' step functions (:mod:`memloss.models.cells`); the others are applied
by the layer around the step. See docs/models.md for where each site acts.

A new site is one :class:`Site` line here and, if it acts in the step, the line of each
cell's step that applies it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Literal

from memloss.core.registry import Registry

if TYPE_CHECKING:
    from .schemes import SiteSpec

__all__ = ["Site", "SITES", "get_site", "layer_sites", "recurrence_sites", "step_sites",
           "carried_states", "mask_shape"]

#: where a site's mask is applied: ``net`` (by a Net, before its recurrent stack),
#: ``input`` (a layer's input, in the input product before the loop), ``product`` (the
#: recurrent product: h_{t-1} or the matrix), ``step`` (inside the cell's step function),
#: ``between`` (a layer's output on its way into the next layer), ``output`` (the stack's output)
Acts = Literal["net", "input", "product", "step", "between", "output"]


@dataclass(frozen=True)
class Site:
    """One mask site.

    ``kind``: ``dropout`` (the mask multiplies the value) or ``zoneout`` (the mask is an
    indicator of keeping the previous value). ``scope``: ``layer`` (one mask per layer, key
    ``l{k}.{name}``) or ``net`` (once per net: the embedding, the last layer's output).
    ``acts``: where the mask is applied (see :data:`Acts`). ``in_recurrence``: the mask acts
    inside the time loop. ``width``: what the mask spans (``input`` features, ``hidden``
    units, ``vocab`` word types, or the recurrent ``weight`` matrix). ``needs``: the cell
    feature the site acts on (``None``: every cell has it). ``carries``: the name of a state
    the site adds to the recurrence (carried from step to step and across calls in ``hx``).
    """

    name: str
    kind: Literal["dropout", "zoneout"]
    scope: Literal["layer", "net"]
    acts: Acts
    in_recurrence: bool
    width: Literal["input", "hidden", "vocab", "weight"]
    needs: str | None
    description: str
    carries: str | None = None


SITES: Registry[Site] = Registry("site")

for _site in (  # step order, which is also the order masks are drawn in
    Site("embedding", "dropout", "net", "net", False, "vocab", None,
         "word types dropped from the embedding, the same word everywhere (Gal 4.2)"),
    Site("input", "dropout", "layer", "input", False, "input", None, "each layer's input x_t"),
    Site("recurrent", "dropout", "layer", "product", True, "hidden", None,
         "h_{t-1} before the recurrent product (per gate when untied)"),
    Site("update", "dropout", "layer", "step", True, "hidden", "update",
         "the candidate update g (LSTM) / n (GRU)"),
    Site("cell", "dropout", "layer", "step", True, "hidden", "cell",
         "the new cell state c_t (Moon)"),
    Site("hidden", "dropout", "layer", "step", True, "hidden", None, "the new hidden state h_t"),
    Site("zoneout_cell", "zoneout", "layer", "step", True, "hidden", "cell",
         "cells keep c_{t-1} (Krueger)"),
    Site("zoneout_hidden", "zoneout", "layer", "step", True, "hidden", None,
         "hidden units keep h_{t-1} (Krueger)"),
    Site("output_gate", "zoneout", "layer", "step", True, "hidden", "output_gate",
         "the output gate keeps o_{t-1} where the update was dropped (Krueger 3.3)",
         carries="o"),
    Site("weight", "dropout", "layer", "product", False, "weight", None,
         "DropConnect on the recurrent matrix, once per forward"),
    Site("between", "dropout", "net", "between", False, "hidden", None,
         "each layer's output before the next layer reads it, both directions alike "
         "(torch.nn's dropout=)"),
    Site("output", "dropout", "net", "output", False, "hidden", None, "the last layer's output"),
):
    SITES.register(_site.name, _site.description)(_site)


def get_site(name: str) -> Site:
    return SITES.get(name)


#: the three derived lists below, per set of registered sites (registries only add names, so
#: the names key them): every layer's forward asks for them
_DERIVED: dict[tuple[str, ...], tuple[tuple[str, ...], frozenset[str], tuple[str, ...]]] = {}


def _derived() -> tuple[tuple[str, ...], frozenset[str], tuple[str, ...]]:
    names = tuple(SITES)
    got = _DERIVED.get(names)
    if got is None:
        sites = [(n, SITES.get(n)) for n in names]
        got = _DERIVED[names] = (
            tuple(n for n, s in sites if s.scope == "layer"),
            frozenset(n for n, s in sites if s.in_recurrence),
            tuple(n for n, s in sites if s.acts == "step"))
    return got


def layer_sites() -> tuple[str, ...]:
    """The per-layer sites, in the order a layer's masks are planned and drawn."""
    return _derived()[0]


def recurrence_sites() -> frozenset[str]:
    """Sites whose masks act inside the time loop."""
    return _derived()[1]


def step_sites() -> tuple[str, ...]:
    """Sites the cells' step functions read (the others act around the step)."""
    return _derived()[2]


def carried_states(sites: Iterable[str]) -> tuple[str, ...]:
    """The states the given sites add to a cell's own state, in registry order."""
    used = set(sites)
    return tuple(s.carries for n in SITES if n in used and (s := SITES.get(n)).carries)


def mask_shape(site: str, spec: "SiteSpec", gates: int, input_size: int, hidden_size: int,
               vocab_size: int | None = None) -> tuple[int, ...]:
    """The per-sample shape of a site's mask (without the ``T`` and ``B`` axes): ``[N]``,
    ``[G, N]`` per gate, ``[G*H, H]`` for the recurrent matrix."""
    width = SITES.get(site).width
    if width == "weight":
        return (gates * hidden_size, hidden_size)
    n = {"input": input_size, "hidden": hidden_size, "vocab": vocab_size}[width]
    if n is None:
        raise ValueError(f"the {site!r} site needs a vocabulary size")
    return (gates, n) if spec.per_gate else (n,)
