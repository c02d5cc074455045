"""The mask sites: every place of a recurrence step where a scheme can put a mask.

One registry, :data:`SITES`, in step order. Everything that needs to know about sites asks
it: which sites a cell has (``needs``), which masks a layer plans and in what order (the
order masks are drawn from a generator), which ones act inside the time loop (those rule
out torch's own kernels), and how wide each mask is. See docs/models.md for where each
site acts in the LSTM, GRU and RNN step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from memloss.core.registry import Registry

__all__ = ["Site", "SITES", "get_site", "layer_sites", "recurrence_sites"]


@dataclass(frozen=True)
class Site:
    """One mask site.

    ``kind``: ``dropout`` (the mask multiplies the value) or ``zoneout`` (the mask is an
    indicator of keeping the previous value). ``scope``: ``layer`` (one mask per layer) or
    ``net`` (once per net: the embedding, the last layer's output). ``in_recurrence``: the
    mask acts inside the time loop. ``width``: what the mask spans (``input`` features,
    ``hidden`` units, ``vocab`` word types, or the recurrent ``weight`` matrix). ``needs``:
    the cell feature the site acts on (``None``: every cell has it).
    """

    name: str
    kind: Literal["dropout", "zoneout"]
    scope: Literal["layer", "net"]
    in_recurrence: bool
    width: Literal["input", "hidden", "vocab", "weight"]
    needs: str | None
    description: str


SITES: Registry[Site] = Registry("site")

for _site in (  # step order, which is also the order masks are drawn in
    Site("embedding", "dropout", "net", False, "vocab", None,
         "word types dropped from the embedding, the same word everywhere (Gal 4.2)"),
    Site("input", "dropout", "layer", False, "input", None, "each layer's input x_t"),
    Site("recurrent", "dropout", "layer", True, "hidden", None,
         "h_{t-1} before the recurrent product (per gate when untied)"),
    Site("update", "dropout", "layer", True, "hidden", "update",
         "the candidate update g (LSTM) / n (GRU)"),
    Site("cell", "dropout", "layer", True, "hidden", "cell", "the new cell state c_t (Moon)"),
    Site("hidden", "dropout", "layer", True, "hidden", None, "the new hidden state h_t"),
    Site("zoneout_cell", "zoneout", "layer", True, "hidden", "cell",
         "cells keep c_{t-1} (Krueger)"),
    Site("zoneout_hidden", "zoneout", "layer", True, "hidden", None,
         "hidden units keep h_{t-1} (Krueger)"),
    Site("output_gate", "zoneout", "layer", True, "hidden", "output_gate",
         "the output gate keeps o_{t-1} where the update was dropped (Krueger 3.3)"),
    Site("weight", "dropout", "layer", False, "weight", None,
         "DropConnect on the recurrent matrix, once per forward"),
    Site("output", "dropout", "net", False, "hidden", None, "the last layer's output"),
):
    SITES.register(_site.name, _site.description)(_site)


def get_site(name: str) -> Site:
    return SITES.get(name)


def layer_sites() -> tuple[str, ...]:
    """The per-layer sites, in the order a layer's masks are planned and drawn."""
    return tuple(n for n in SITES if SITES.get(n).scope == "layer")


def recurrence_sites() -> frozenset[str]:
    """Sites whose masks act inside the time loop."""
    return frozenset(n for n in SITES if SITES.get(n).in_recurrence)
