"""What a sweep runs: :class:`RunSpec` (one ``memloss train`` command line) and grids of them.

A grid is a TOML file (or the same dict) whose keys are crossed, a list meaning "one run per
value"::

    task = "temporal-order"          # or: preset = ["semeniuta-t1-short-moon-step-cpu", ...]
    scheme = ["semeniuta:p=0.25", "moon:p=0.25,sampling=sequence"]
    seed = [0, 1]
    [set]                            # any `--set` key; a list is crossed too
    hidden_size = 16
    epochs = 1
    task.length = ["short", "medium"]

Run names are deterministic and readable: the values of the keys that vary, joined by ``_``
(``semeniuta-p0.25_seed-0``).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from memloss.core import bounds

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["RunSpec", "grid_runs", "load_grid", "name_runs", "parse_seeds", "GRID_KEYS"]

#: the top-level keys a grid file takes
GRID_KEYS = ("task", "preset", "scheme", "seed", "set")


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: ``memloss train TARGET [--scheme S] --set K=V ... --out DIR/NAME``.

    ``target``: a task or preset name; ``sets``: ``key=value`` strings as ``--set`` takes
    them (the seed is one of them); ``name``: the run directory's name in the sweep.
    """

    name: str
    target: str
    scheme: str | None = None
    sets: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict, compare=False)

    def argv(self, out: str | os.PathLike) -> list[str]:
        """The ``memloss train`` command line of this run (``--resume-or-start``)."""
        args = ["memloss", "train", self.target]
        if self.scheme is not None:
            args += ["--scheme", self.scheme]
        for s in self.sets:
            args += ["--set", s]
        return args + ["--out", str(out), "--resume-or-start"]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target, "scheme": self.scheme,
                "sets": list(self.sets)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunSpec":
        return cls(d["name"], d["target"], d.get("scheme"), tuple(d.get("sets", ())))


def _set_text(value: Any) -> str:
    """A grid value as ``--set`` text (strings as they are, anything else as JSON)."""
    return value if isinstance(value, str) else json.dumps(value)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"task": {"length": 30}}`` -> ``{"task.length": 30}`` (TOML dotted keys)."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and key not in ("task_params",):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _values(where: str, v: Any) -> list[Any]:
    if isinstance(v, list):
        if not v:
            raise ValueError(f"grid: {where} is an empty list; give at least one value")
        return v
    return [v]


_TOKEN_NUM = re.compile(r"(\w+)=(-?[0-9][0-9.e+-]*)")


def _token(value: Any) -> str:
    """A value as a piece of a directory name: ``moon:p=0.25,sampling=sequence`` ->
    ``moon-p0.25-sampling-sequence``."""
    text = _set_text(value).replace("e+", "e")  # 1e+30 -> 1e30
    text = _TOKEN_NUM.sub(r"\1\2", text)
    text = re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-.")
    return text or "x"


def _trim_common(names: Sequence[str]) -> list[str]:
    """Drop the dash-separated words every name starts or ends with."""
    parts = [n.split("-") for n in names]
    if len(parts) < 2:
        return list(names)
    head = 0
    while all(len(p) > head + 1 for p in parts) and len({p[head] for p in parts}) == 1:
        head += 1
    tail = 0
    while (all(len(p) > head + tail + 1 for p in parts)
           and len({p[-1 - tail] for p in parts}) == 1):
        tail += 1
    return ["-".join(p[head:len(p) - tail]) for p in parts]


def name_runs(values: Sequence[dict[str, Any]]) -> list[str]:
    """Names from each run's values (key -> value, in crossing order): the keys that vary
    and the seed, ``key-value`` joined by ``_`` (targets by their distinctive words, schemes by their
    text); a clash gets a short digest of the run's values."""
    if not values:
        return []
    keys = list(dict.fromkeys(k for v in values for k in v))
    # the seed is always named, so that adding seeds later keeps the existing runs' names
    varying = [k for k in keys
               if k == "seed" or len({json.dumps(v.get(k), sort_keys=True) for v in values}) > 1]
    columns: dict[str, list[str]] = {}
    for k in varying:
        tokens = [_token(v.get(k)) for v in values]
        if k == "target":
            columns[k] = _trim_common(tokens)
        elif k == "scheme":
            columns[k] = tokens
        else:
            columns[k] = [f"{_token(k.split('.')[-1])}-{t}" for t in tokens]
    if varying == ["seed"] and len(values) == 1:
        only = values[0]
        return [f"{_token(only['target'])}_seed-{only['seed']}"]
    names = ["_".join(columns[k][i] for k in varying) for i in range(len(values))]
    counts = {n: names.count(n) for n in names}
    out = []
    for n, v in zip(names, values):
        if counts[n] > 1:
            digest = hashlib.sha1(json.dumps(v, sort_keys=True).encode()).hexdigest()[:6]
            n = f"{n}_{digest}"
        out.append(n)
    return out


def grid_runs(grid: Mapping[str, Any], *, seeds: Sequence[int] | None = None,
              sets: Sequence[str] = ()) -> list[RunSpec]:
    """The runs of a grid (see the module doc). ``seeds`` (``--seeds``) replaces a grid
    without ``seed``; ``sets`` (``--set``) apply to every run, after the grid's own."""
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ValueError(f"grid: unknown key {unknown[0]!r}; valid keys: {', '.join(GRID_KEYS)} "
                         "(options such as lr go under [set])")
    if ("task" in grid) == ("preset" in grid):
        raise ValueError("grid: give exactly one of task = ... or preset = ... (a name or a list)")
    target_key = "task" if "task" in grid else "preset"
    targets = _values(target_key, grid[target_key])
    for t in targets:
        if not isinstance(t, str):
            raise ValueError(f"grid: {target_key} must be a name or a list of names, got {t!r}")
    schemes = _values("scheme", grid["scheme"]) if "scheme" in grid else [None]
    if "seed" in grid and seeds is not None:
        raise ValueError("grid: the file sets seed and --seeds was given; keep one of them")
    seed_list = _values("seed", grid["seed"]) if "seed" in grid else list(seeds or [0])
    for s in seed_list:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"grid: seed must be an integer >= 0 or a list of them, got {s!r}")
    table = grid.get("set", {})
    if not isinstance(table, Mapping):
        raise ValueError("grid: set must be a table ([set] with key = value lines)")
    flat = _flatten(table)
    for k in flat:
        if k == "seed":
            raise ValueError("grid: give the seed as a top-level key (seed = [0, 1]), not in [set]")
    set_axes = [[(k, v) for v in _values(f"set.{k}", val)] for k, val in flat.items()]
    bounds.check_runs("the grid", math.prod(map(len, [targets, schemes, *set_axes, seed_list])))
    combos = []
    for target, scheme, *chosen, seed in itertools.product(targets, schemes, *set_axes, seed_list):
        values: dict[str, Any] = {"target": target}
        if scheme is not None:
            values["scheme"] = scheme
        values.update(dict(chosen))
        values["seed"] = seed
        combos.append(values)
    names = name_runs(combos)
    runs = []
    for name, v in zip(names, combos):
        run_sets = [f"{k}={_set_text(x)}" for k, x in v.items() if k not in ("target", "scheme", "seed")]
        run_sets += list(sets) + [f"seed={v['seed']}"]
        runs.append(RunSpec(name, v["target"], v.get("scheme"), tuple(run_sets), v))
    return runs


def load_grid(path: str | os.PathLike) -> dict[str, Any]:
    """Read a grid TOML file; a syntax error names the file and the line."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"grid file {p} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"grid file {p} is not valid TOML: {e}") from None


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: a count (``3`` -> 0, 1, 2) or a comma list (``0,5,7``)."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            count = int(text)
    except ValueError:
        raise ValueError(f"--seeds takes a count (3 = seeds 0, 1, 2) or a list (0,5,7), got "
                         f"{text!r}") from None
    if "," not in text:
        bounds.check_runs("--seeds", count)  # before the list is made
        seeds = list(range(count))
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must give distinct seeds >= 0, got {text!r}")
    return seeds
