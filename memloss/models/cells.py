"""Cell kinds as data: gate count, whether a cell state exists, and which mask sites apply.

The per-step equations live in :mod:`memloss.models.paths.reference`; this module only
describes cells. Which sites a cell has follows from its ``features`` and the site registry
(:mod:`memloss.models.sites`).
"""
from __future__ import annotations

from dataclasses import dataclass

from memloss.core.registry import Registry

from .sites import SITES

__all__ = ["CellSpec", "CELLS", "get_cell", "list_cells", "NONLINEARITIES"]

NONLINEARITIES = ("tanh", "relu")


@dataclass(frozen=True)
class CellSpec:
    """What a recurrence step looks like, for mask planning and validation.

    ``gates`` is the number of H-sized blocks in the fused weight (torch.nn gate order:
    LSTM i,f,g,o; GRU r,z,n; RNN one block). ``features``: what the step has beyond an
    input, a recurrent product and a hidden state (``cell``: a cell state; ``update``: a
    candidate update; ``output_gate``), which decides the sites it offers.
    """

    name: str
    gates: int
    features: frozenset[str]
    description: str

    @property
    def has_cell(self) -> bool:
        return "cell" in self.features

    @property
    def sites(self) -> tuple[str, ...]:
        """The mask sites this cell offers, in step order."""
        return tuple(n for n in SITES if SITES.get(n).needs in (None, *self.features))


CELLS: Registry[CellSpec] = Registry("cell")

for _spec in (
    CellSpec("lstm", 4, frozenset({"cell", "update", "output_gate"}), "LSTM (Zaremba 3.1 / Semeniuta eq. 4-6), fused [x, h] -> 4H weight"),
    CellSpec("gru", 3, frozenset({"update"}), "GRU (Semeniuta eq. 10-12, torch/cuDNN reset-after form)"),
    CellSpec("rnn", 1, frozenset(), "vanilla RNN h_t = f(W x_t + U h_{t-1} + b), f = tanh or relu"),
):
    CELLS.register(_spec.name, _spec.description)(_spec)


def get_cell(name: str) -> CellSpec:
    return CELLS.get(name)


def list_cells() -> list[str]:
    return CELLS.list()
