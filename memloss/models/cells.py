"""Cell kinds as data: gate count, whether a cell state exists, and which mask sites apply.

The per-step equations live in :mod:`memloss.models.paths.reference`; this module only describes cells.
"""
from __future__ import annotations

from dataclasses import dataclass

from memloss.core.registry import Registry

__all__ = ["CellSpec", "CELLS", "get_cell", "list_cells", "NONLINEARITIES"]

NONLINEARITIES = ("tanh", "relu")


@dataclass(frozen=True)
class CellSpec:
    """What a recurrence step looks like, for mask planning and validation.

    ``gates`` is the number of H-sized blocks in the fused weight (torch.nn gate order:
    LSTM i,f,g,o; GRU r,z,n; RNN one block).
    """

    name: str
    gates: int
    has_cell: bool
    description: str

    @property
    def sites(self) -> tuple[str, ...]:
        base = ("input", "recurrent", "update", "hidden", "zoneout_hidden", "weight", "output")
        if self.has_cell:
            return base + ("cell", "zoneout_cell", "output_gate")
        if self.name == "rnn":
            return tuple(s for s in base if s != "update")
        return base


CELLS: Registry[CellSpec] = Registry("cell")

for _spec in (
    CellSpec("lstm", 4, True, "LSTM (Zaremba 3.1 / Semeniuta eq. 4-6), fused [x, h] -> 4H weight"),
    CellSpec("gru", 3, False, "GRU (Semeniuta eq. 10-12, torch/cuDNN reset-after form)"),
    CellSpec("rnn", 1, False, "vanilla RNN h_t = f(W x_t + U h_{t-1} + b), f = tanh or relu"),
):
    CELLS.register(_spec.name, _spec.description)(_spec)


def get_cell(name: str) -> CellSpec:
    return CELLS.get(name)


def list_cells() -> list[str]:
    return CELLS.list()
