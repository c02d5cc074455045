"""memloss models: cells x schemes (mask sites) -> Recurrent layer -> Net."""
from .cells import CELLS, CellSpec, get_cell, list_cells
from .masks import LayerMasks, MaskEntry, MaskPlan, Masks
from .inference import INFERENCE_MODES, predict
from .net import DATA_FIELDS, Net, NetConfig
from .recurrent import PATHS, Recurrent
from .sites import SITES, Site, get_site
from .schemes import SCHEMES, Scheme, SiteSpec, Stack, list_schemes, make_scheme, parse_scheme

__all__ = [
    "CELLS", "CellSpec", "get_cell", "list_cells",
    "LayerMasks", "MaskEntry", "MaskPlan", "Masks", "SITES", "Site", "get_site",
    "INFERENCE_MODES", "predict", "DATA_FIELDS", "Net", "NetConfig",
    "PATHS", "Recurrent",
    "SCHEMES", "Scheme", "SiteSpec", "Stack", "list_schemes", "make_scheme", "parse_scheme",
]
