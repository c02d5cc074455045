"""Cells as data: each owns its step (see :mod:`memloss.models.cells.base`). A new cell is a
module with its step and one :func:`register_cell` line, imported here."""
from .base import (CELLS, NONLINEARITIES, TORCH_PARAMS, Activation, CellSpec, Memory, ParamSpec,
                   Record, Step, drop, emit, get_cell, list_cells, native_cells, register_cell,
                   zone)
from . import lstm, gru, rnn, layernorm_lstm  # noqa: F401  (registers the cells, in this order)

__all__ = ["CELLS", "NONLINEARITIES", "TORCH_PARAMS", "Activation", "CellSpec", "Memory",
           "ParamSpec", "Record", "Step", "drop", "emit", "zone", "get_cell", "list_cells",
           "native_cells", "register_cell"]
