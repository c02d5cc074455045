"""``memloss ls KIND``: list registered cells, schemes, tasks, presets or probes."""
from __future__ import annotations

import argparse
import importlib
from typing import Callable

__all__ = ["add_parser", "LISTINGS", "listing"]


def _from_registry(module: str, attr: str) -> Callable[[], list[tuple[str, str]]]:
    def get() -> list[tuple[str, str]]:
        reg = getattr(importlib.import_module(module), attr)
        return [(name, reg.describe(name)) for name in reg.list()]
    return get


#: what ``memloss ls`` can list: kind -> rows of (name, description), imported lazily
LISTINGS: dict[str, Callable[[], list[tuple[str, str]]]] = {
    "cells": _from_registry("memloss.models.cells", "CELLS"),
    "schemes": _from_registry("memloss.models.schemes", "SCHEMES"),
    "tasks": _from_registry("memloss.tasks", "TASKS"),
    "presets": _from_registry("memloss.presets", "PRESETS"),
    "probes": _from_registry("memloss.diagnostics", "PROBES"),
}


def listing(kind: str) -> list[tuple[str, str]]:
    if kind not in LISTINGS:
        raise ValueError(f"cannot list {kind!r}; valid: {', '.join(LISTINGS)}")
    return LISTINGS[kind]()


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
