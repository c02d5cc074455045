"""The test tiers (docs/testing.md).

``make test`` (plain ``pytest``) runs the fast tier: every test but those marked ``slow``,
``full``, ``e2e``, ``faults`` or ``gpu`` (pyproject's ``addopts``). ``make test-all`` runs every
tier (``-m ""``).

The fast tier still touches every capability once. A parametrized test with many cases (a
cross product of cells, schemes, paths, presets, probes...) keeps a covering subset: a few
cases, picked greedily in collection order, that between them include every value of
every facet the cases have (every cell, every scheme, every switch value, every site the
scheme places on the cell, every path, and every path of every cell; for presets every
paper's table and both sizes; every probe, task, group of the fault table...). The other cases
are marked ``full``. The selection depends on the collected cases only, so it is the same on
every run and picks up a new cell or scheme by itself. ``tests/faults`` (the fault campaign) is
marked ``faults`` but for such a covering subset of it; the tests named in :data:`E2E` are
marked ``e2e``, those in :data:`SLOW` ``slow``, and the cross products in :data:`ONE_CASE`
keep one case. The slow cross products in :data:`SLOW_COVER` keep a covering subset in the
slow tier and mark their other cases ``full`` as well: CI runs every tier but ``full``, so it
still reaches every facet of them once.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Hashable

import pytest

# one torch thread, here and in every command a test starts: the tests' nets are tiny, and
# torch's default threads spin on a busy machine, which costs CPU time and gains nothing
os.environ.setdefault("OMP_NUM_THREADS", "1")
# the fused path's step kernels are compiled only by the tests of compiling (tests/models/
# test_fused.py's ``compiled`` fixture and cache tests, tests/benchmarks/test_micro.py set
# it themselves); elsewhere the traced step runs uncompiled, with the same results. On a
# machine with an empty kernel cache, compiling in every training test cost the fast tier
# 444 s of CPU time against 154 s with a warm cache (measured).
os.environ.setdefault("MEMLOSS_COMPILE", "never")

#: a parametrized test with at least this many cases keeps a covering subset in the fast tier
COVER_FROM = 8
#: markers that already keep a test out of the fast tier (pyproject's addopts)
OUT_OF_FAST = ("slow", "gpu", "full", "e2e", "faults")
#: end-to-end runs beyond the one of each kind the fast tier keeps (a sweep on the pool, Ray
#: and submitit, a report in Chromium and as PDF, a tracker of each kind): the ``e2e`` tier,
#: by ``path::function``
E2E = frozenset({
    "tests/sweep/test_launchers.py::test_killing_a_sweep_mid_run_then_sweeping_again_resumes_bit_for_bit",
    "tests/sweep/test_launchers.py::test_a_failure_is_recorded_and_retried_only_when_asked",
    "tests/memloss/test_plugins.py::test_a_callback_from_an_installed_package_is_found_by_hooks",
    "tests/diagnostics/test_import.py::test_word_language_model_goes_through_eval_probe_and_report",
    "tests/reports/test_as_a_user_sees_it.py::test_two_reports_of_the_same_runs_are_byte_identical",
})
#: tests over about 5 s of CPU time (measured: docs/testing.md), marked ``slow`` here rather
#: than in their files
SLOW = frozenset({
    "tests/models/test_toolchain.py::test_torch_compile_inductor_training_and_eval",
    "tests/benchmarks/test_suites.py::test_peak_memory_benchmark_is_deterministic_and_orders_the_paths",
})
#: cross products whose every case costs seconds of compiling: the fast tier keeps one case
ONE_CASE = frozenset({
    "tests/models/test_toolchain.py::test_torch_compile_every_site",
    # a subprocess of the official example per scheme: 14-31 s each
    "tests/nn/test_drop_in_scripts.py::test_every_scheme_runs_with_one_argument",
})
#: slow cross products that keep a covering subset in the slow tier; their other cases are
#: marked ``full`` too (CI runs every tier but ``full``: docs/testing.md)
SLOW_COVER = frozenset({
    # Inductor compiles each case's graphs for 13-35 s of CPU
    "tests/models/test_toolchain.py::test_torch_compile_inductor_every_scheme",
})
#: where the fault campaign lives
FAULTS_DIR = "tests/faults/"


def _registries() -> dict[str, Any]:
    from memloss.diagnostics import PROBES
    from memloss.models import CELLS, SCHEMES, SITES
    from memloss.presets import PRESETS
    from memloss.tasks import TASKS

    return {"cell": CELLS, "scheme": SCHEMES, "site": SITES, "probe": PROBES, "task": TASKS,
            "preset": PRESETS}


PATHS = ("auto", "reference", "fused", "native")
#: a scheme's switches whose every value the fast tier runs once
SWITCHES = ("sampling", "scaling", "tied", "shared", "reading")


def _scheme_facets(scheme: Any) -> set[tuple]:
    from memloss.models.schemes import Stack

    parts = scheme.schemes if isinstance(scheme, Stack) else (scheme,)
    out: set[tuple] = {("stack", len(parts) > 1)}
    for s in parts:
        out.add(("scheme", s.name))
        out |= {("switch", s.name, k, getattr(s, k)) for k in SWITCHES if hasattr(s, k)}
    return out


def _value_facets(argname: str, value: Any, regs: dict[str, Any],
                  plain: bool) -> tuple[set[tuple], Any]:
    """The facets of one parameter value, and the scheme object it is (for sites), if any;
    ``plain``: a value no registry knows is a facet itself (False for an argument with more
    distinct values than two and half its cases: an id, such as a case's name)."""
    from memloss.models import parse_scheme
    from memloss.models.schemes import Scheme

    if isinstance(value, Scheme):
        return _scheme_facets(value), value
    if isinstance(value, str):
        for kind in ("cell", "probe", "task", "site"):
            if value in regs[kind].list():
                return {(kind, value)}, None
        if value in PATHS:
            return {("path", value)}, None
        if value in regs["preset"].list():
            p = regs["preset"].get(value)
            return {("table", p.paper, p.table), ("cpu-variant", bool(p.cpu_of))}, None
        if value.split(":")[0].split("+")[0] in regs["scheme"].list():
            try:
                scheme = parse_scheme(value)
            except ValueError:
                return set(), None
            return _scheme_facets(scheme), scheme
    group = getattr(value, "group", None)  # the fault table's entries
    if isinstance(group, str):
        return {("group", group)}, None
    if isinstance(value, dict):  # keyword arguments: each key's value
        return {("value", f"{argname}.{k}", repr(v)) for k, v in value.items()}, None
    return ({("value", argname, repr(value))} if plain else set()), None


def facets(params: dict[str, Any], regs: dict[str, Any],
           ids: frozenset[str] = frozenset()) -> set[Hashable]:
    """What one case of a parametrized test exercises (see the module doc); ``ids``: the
    arguments that name cases rather than vary a setting (see :func:`_value_facets`)."""
    from memloss.models import get_cell
    from memloss.models.paths.native import native_eligible

    out: set[Hashable] = set()
    schemes, cells, paths = [], [], []
    for name, value in params.items():
        found, scheme = _value_facets(name, value, regs, name not in ids)
        out |= found
        if scheme is not None:
            schemes.append(scheme)
        cells += [f[1] for f in found if f[0] == "cell"]
        paths += [f[1] for f in found if f[0] == "path"]
    for cell in cells:
        for scheme in schemes:
            try:
                out |= {("site", s) for s in scheme.sites(get_cell(cell))}
            except ValueError:  # a case that checks the refusal
                out.add(("refused", cell))
        out |= {("cell-path", cell, p) for p in paths}
    if "native" in paths:  # a native case that runs, not only ones the native path declines
        for scheme in schemes:
            try:
                sites = scheme.sites(get_cell((cells or ["lstm"])[0]))
            except ValueError:
                continue
            if native_eligible(sites):
                out.add(("native-runs",))
    return out


def covering(cases: list[set[Hashable]]) -> list[int]:
    """Indices of a small subset of ``cases`` whose facets together are all of theirs: greedy
    (the case adding the most facets not yet covered; the first such case on a tie)."""
    left = set().union(*cases)
    chosen: list[int] = []
    while left:
        best = max(range(len(cases)), key=lambda i: (len(cases[i] & left), -i))
        chosen.append(best)
        left -= cases[best]
    return sorted(chosen)


def _function_key(item: pytest.Item) -> str:
    path = item.nodeid.split("::", 1)[0]
    name = getattr(item, "originalname", None) or item.name.split("[", 1)[0]
    return f"{path}::{name}"


def _in_fast_tier(item: pytest.Item) -> bool:
    return not any(item.get_closest_marker(m) for m in OUT_OF_FAST)


def fast_cases(params: list[dict[str, Any]], regs: dict[str, Any] | None = None,
               one: bool = False) -> set[int]:
    """Which cases of one parametrized test (their parameters) the fast tier keeps: a covering
    subset of those with facets (``one``: its first case only) and every case with none."""
    regs = regs or _registries()
    names = {n for p in params for n in p}
    distinct = {n: len({repr(p.get(n)) for p in params}) for n in names}
    ids = frozenset(n for n, d in distinct.items() if d > 2 and 2 * d >= len(params))
    found = [facets(p, regs, ids) for p in params]
    with_facets = [i for i, f in enumerate(found) if f]
    cover = [with_facets[n] for n in covering([found[i] for i in with_facets])]
    return set(cover[:1] if one else cover) | {i for i, f in enumerate(found) if not f}


def _select(items: list[pytest.Item], regs: dict[str, Any], mark: str, one: bool) -> None:
    """Mark ``mark`` on every case of ``items`` (one function's fast cases) the fast tier does
    not keep (:func:`fast_cases`)."""
    keep = fast_cases([getattr(getattr(i, "callspec", None), "params", {}) for i in items],
                      regs, one)
    for n, item in enumerate(items):
        if n not in keep:
            item.add_marker(getattr(pytest.mark, mark))


def pytest_configure(config: pytest.Config) -> None:
    import torch

    threads = os.environ["OMP_NUM_THREADS"]
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))


def _check_names(root: Path) -> None:
    """Every test :data:`E2E`, :data:`SLOW`, :data:`ONE_CASE` and :data:`SLOW_COVER` name
    exists: a renamed test would otherwise fall back into the fast tier unnoticed."""
    for key in sorted(E2E | SLOW | ONE_CASE | SLOW_COVER):
        path, name = key.split("::")
        file = root / path
        if not file.is_file() or f"def {name}(" not in file.read_text(encoding="utf-8"):
            raise pytest.UsageError(f"tests/conftest.py names {key}, which does not exist; "
                                    "update E2E, SLOW, ONE_CASE or SLOW_COVER there")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tiers before ``-m`` deselects (see the module doc)."""
    _check_names(config.rootpath)
    regs = _registries()
    by_function: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        key = _function_key(item)
        if key in E2E:
            item.add_marker(pytest.mark.e2e)
        if key in SLOW:
            item.add_marker(pytest.mark.slow)
        faults = key.startswith(FAULTS_DIR)
        if faults and not hasattr(item, "callspec"):
            item.add_marker(pytest.mark.faults)
        if (_in_fast_tier(item) or key in SLOW_COVER) and hasattr(item, "callspec"):
            by_function[key].append(item)
    for key, cases in by_function.items():
        faults = key.startswith(FAULTS_DIR)
        if faults or key in ONE_CASE or key in SLOW_COVER or len(cases) >= COVER_FROM:
            _select(cases, regs, "faults" if faults else "full", one=key in ONE_CASE)
