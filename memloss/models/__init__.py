"""memloss models: cells x schemes (mask sites) -> Recurrent layer -> Net."""
from .cells import CELLS, CellSpec, get_cell, list_cells
from .masks import MaskEntry, MaskPlan, Masks
from .net import INFERENCE_MODES, Net, NetConfig
from .recurrent import PATHS, Recurrent
from .schemes import SCHEMES, Scheme, SiteSpec, Stack, list_schemes, make_scheme, parse_scheme

__all__ = [
    "CELLS", "CellSpec", "get_cell", "list_cells",
    "MaskEntry", "MaskPlan", "Masks",
    "INFERENCE_MODES", "Net", "NetConfig",
    "PATHS", "Recurrent",
    "SCHEMES", "Scheme", "SiteSpec", "Stack", "list_schemes", "make_scheme", "parse_scheme",
]
