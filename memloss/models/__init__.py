"""memloss models: cells x schemes (mask sites) -> Recurrent layer -> Net.

Each name is imported from its module on first use, so that the parts without torch (the
scheme and site registries, the names of the inference modes) load without it: ``memloss
ls schemes`` and the command line's parsers answer at once.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: every public name -> the module that defines it
_HOMES = {
    "CELLS": "cells", "CellSpec": "cells", "get_cell": "cells", "list_cells": "cells",
    "LayerMasks": "masks", "MaskEntry": "masks", "MaskPlan": "masks", "Masks": "masks",
    "SITES": "sites", "Site": "sites", "get_site": "sites",
    "INFERENCE_MODES": "modes", "predict": "inference",
    "DATA_FIELDS": "net", "Net": "net", "NetConfig": "net", "FoldedHead": "heads",
    "PATHS": "recurrent", "Recurrent": "recurrent",
    "SCHEMES": "schemes", "Scheme": "schemes", "SiteSpec": "schemes", "Stack": "schemes",
    "list_schemes": "schemes", "make_scheme": "schemes", "parse_scheme": "schemes",
}

__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from .cells import CELLS, CellSpec, get_cell, list_cells
    from .heads import FoldedHead
    from .inference import predict
    from .masks import LayerMasks, MaskEntry, MaskPlan, Masks
    from .modes import INFERENCE_MODES
    from .net import DATA_FIELDS, Net, NetConfig
    from .recurrent import PATHS, Recurrent
    from .schemes import SCHEMES, Scheme, SiteSpec, Stack, list_schemes, make_scheme, parse_scheme
    from .sites import SITES, Site, get_site
