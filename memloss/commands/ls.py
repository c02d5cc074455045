"""``memloss ls KIND``: list registered cells, schemes, tasks, presets or probes.

``ls`` answers without torch or the report stack. Schemes and presets are listed from their
registries, which load without torch. Cells, tasks and probes are defined with torch (their
steps, batches and measurements), so they are listed from :data:`CATALOG`, the names and
descriptions of those built-in registries, in registry order (a JSON object keeps it). It is written from the
registries themselves by::

    python -m memloss.commands.ls

and ``tests/cli/test_ls.py`` fails, naming that command, while it differs from them (a cell,
task or probe added, renamed or described anew). Where an installed package adds a plug-in
to one of them (an entry point in the registry's group, ``docs/sweeps.md``), that listing
imports the registry instead, plug-ins included; so does a missing catalog.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "LISTINGS", "Listing", "listing", "CATALOG", "build_catalog",
           "write_catalog"]

log = logging.getLogger(__name__)

#: the catalog of the listings whose registries import torch (see the module doc)
CATALOG = Path(__file__).with_name("ls_catalog.json")

Rows = list[tuple[str, str]]


@dataclass(frozen=True)
class Listing:
    """What ``memloss ls`` lists for one kind: the registry ``attr`` of ``module``.
    ``catalogued``: its module imports torch, so the rows come from :data:`CATALOG`."""

    module: str
    attr: str
    catalogued: bool = False

    def registry(self) -> Any:
        return getattr(importlib.import_module(self.module), self.attr)

    def from_registry(self) -> Rows:
        """``(name, description)`` of every registered name (plug-ins included), in order."""
        reg = self.registry()
        return [(name, reg.describe(name)) for name in reg.list()]


#: what ``memloss ls`` can list: kind -> its registry
LISTINGS: dict[str, Listing] = {
    "cells": Listing("memloss.models.cells", "CELLS", catalogued=True),
    "schemes": Listing("memloss.models.schemes", "SCHEMES"),
    "tasks": Listing("memloss.tasks", "TASKS", catalogued=True),
    "presets": Listing("memloss.presets", "PRESETS"),
    "probes": Listing("memloss.diagnostics", "PROBES", catalogued=True),
}


def _plugins(group: str | None) -> bool:
    """Whether an installed package has an entry point in ``group``."""
    if group is None:
        return False
    from importlib import metadata

    return bool(metadata.entry_points(group=group))


def _catalogued(kind: str) -> Rows | None:
    """The catalog's rows of ``kind``; None where the registry must answer (plug-ins
    installed, or no catalog)."""
    try:
        entry = json.loads(CATALOG.read_text(encoding="utf-8"))["listings"][kind]
    except (OSError, ValueError, KeyError) as e:
        log.debug("%s: no catalog of %s (%s); importing the registry", CATALOG, kind, e)
        return None
    if _plugins(entry["entry_points"]):
        return None
    return list(entry["descriptions"].items())


def listing(kind: str) -> Rows:
    """``(name, description)`` of every registered ``kind``, in registry order."""
    if kind not in LISTINGS:
        raise ValueError(f"cannot list {kind!r}; valid: {', '.join(LISTINGS)}")
    entry = LISTINGS[kind]
    rows = _catalogued(kind) if entry.catalogued else None
    return entry.from_registry() if rows is None else rows


def build_catalog() -> dict[str, Any]:
    """The catalog, from the registries (it imports them). Refuses while a plug-in is
    installed in a catalogued registry's group: the catalog holds the built-in names only."""
    listings = {}
    for kind, entry in LISTINGS.items():
        if not entry.catalogued:
            continue
        group = entry.registry().entry_points
        if _plugins(group):
            raise ValueError(f"a plug-in is installed in the entry-point group {group!r}; the "
                             "catalog holds memloss's own names: write it without the plug-in")
        listings[kind] = {"entry_points": group, "descriptions": dict(entry.from_registry())}
    return {"about": "the names and descriptions `memloss ls` lists for the registries that "
                     "import torch; written by `python -m memloss.commands.ls`, do not edit",
            "listings": listings}


def write_catalog(path: Path = CATALOG) -> Path:
    """Write :func:`build_catalog` to ``path`` (atomically)."""
    from memloss.core.atomic import atomic_write_text

    text = json.dumps(build_catalog(), indent=1, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text)


def _run(args: argparse.Namespace) -> int:
    rows = listing(args.kind)
    width = max((len(n) for n, _ in rows), default=0)
    params = None
    if args.kind == "schemes":  # each scheme's parameters, indented under it
        from memloss.models.schemes import SCHEMES

        from .describe import parameter_lines

        params = {name: parameter_lines(SCHEMES.get(name), indent="    ") for name, _ in rows}
    for name, desc in rows:
        print(f"{name:<{width}}  {desc}".rstrip())
        for line in params.get(name, ()) if params else ():
            print(line)
    return 0


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("ls", help="list cells, schemes, tasks, presets or probes")
    p.add_argument("kind", choices=sorted(LISTINGS), help="what to list")
    p.set_defaults(func=_run)


if __name__ == "__main__":  # pragma: no cover (python -m memloss.commands.ls)
    print(f"wrote {write_catalog()}")
