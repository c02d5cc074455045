"""The fast tier's covering subsets (tests/conftest.py) keep every cell, scheme, switch value,
site, path and cell x path of the equation tests, one preset of every paper table, every probe
on some cell and every cell under some probe."""
from __future__ import annotations

from memloss.diagnostics import PROBES
from memloss.models import CELLS, SCHEMES, get_cell
from memloss.presets import PRESETS

from .conftest import covering, fast_cases
from .models.test_equations import PATH_CASES


def test_covering_picks_cases_until_every_facet_is_in():
    assert covering([{1, 2}, {2, 3}, {3}, {1, 2, 3}]) == [3]
    assert covering([{1}, {1}, {2}]) == [0, 2]  # the first case on a tie
    assert covering([]) == []


def test_the_equation_cases_kept_cover_every_cell_scheme_site_and_path():
    params = [dict(cid=cid, cell=cell, scheme=scheme, path=path, stochastic=stochastic)
              for cid, cell, scheme, path in PATH_CASES for stochastic in (True, False)]
    keep = fast_cases(params)
    assert len(keep) < len(params) / 10
    kept = [params[i] for i in keep]

    def seen(key):
        return {key(p) for p in kept}, {key(p) for p in params}

    for key in (lambda p: p["cell"], lambda p: p["path"], lambda p: (p["cell"], p["path"]),
                lambda p: p["stochastic"]):
        got, every = seen(key)
        assert got == every
    names = {s.name for p in kept for s in getattr(p["scheme"], "schemes", (p["scheme"],))}
    assert names == set(SCHEMES.list())
    sites = {s for p in kept for s in p["scheme"].sites(get_cell(p["cell"]))}
    assert sites == {s for p in params for s in p["scheme"].sites(get_cell(p["cell"]))}
    assert {p["cell"] for p in kept} == set(CELLS.list())


def test_one_preset_of_every_table_and_both_sizes():
    names = PRESETS.list()
    kept = [names[i] for i in fast_cases([{"name": n} for n in names])]
    tables = {(PRESETS.get(n).paper, PRESETS.get(n).table) for n in names}
    assert {(PRESETS.get(n).paper, PRESETS.get(n).table) for n in kept} == tables
    assert len(kept) == len(tables)
    assert {n.endswith("-cpu") for n in kept} == {True, False}


def test_every_probe_on_some_cell_and_every_cell_under_some_probe():
    params = [{"name": p, "cell": c} for c in CELLS.list() for p in PROBES.list()]
    kept = [params[i] for i in fast_cases(params)]
    assert {p["name"] for p in kept} == set(PROBES.list())
    assert {p["cell"] for p in kept} == set(CELLS.list())
    assert len(kept) == max(len(PROBES.list()), len(CELLS.list()))


def test_one_case_keeps_the_first_of_the_covering_subset():
    params = [{"cell": c, "path": p} for c in CELLS.list() for p in ("reference", "fused")]
    assert fast_cases(params, one=True) == {0}


def test_cases_with_no_facet_are_all_kept():
    params = [{"text": f"bad input {i}"} for i in range(12)]
    assert fast_cases(params) == set(range(12))
