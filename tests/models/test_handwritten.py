"""The hand-written fused path (``memloss.models.paths.handwritten``), kept only because a
same-run benchmark shows it ahead of the derived path in some rows (``python -m
benchmarks.cpu_table --paths auto handwritten``): no layer dispatches to it, but it stays
equal to the reference for every cell x scheme it implements, gradients included."""
from __future__ import annotations

import pytest

from memloss.models import get_cell
from memloss.models.paths import LAYER_RUNS
from memloss.models.paths.handwritten import fused_supported, handwritten_layer

from .test_fused import _compare
from .variants import NET_SITES, cell_scheme_cases


def _cases():
    out = []
    for cid, cell, scheme, valid in cell_scheme_cases():
        spec = get_cell(cell)
        if not valid or not fused_supported(spec, scheme.sites(spec)):
            continue
        sites = {k for k in scheme.sites(spec) if k not in NET_SITES}
        if "output_gate" in " ".join(sites) or "output-zoneout" in cid:
            continue  # it does not carry the output gate that output-zoneout keeps in the state
        out.append(pytest.param(cell, scheme, id=cid))
    return out


@pytest.mark.parametrize("cell,scheme", _cases())
def test_handwritten_path_equals_the_reference(cell, scheme, monkeypatch):
    monkeypatch.setitem(LAYER_RUNS, "fused", handwritten_layer)
    _compare(cell, scheme)
