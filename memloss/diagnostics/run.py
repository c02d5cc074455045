"""Run several probes on a net and a task and write their outputs.

``run_probes(net, task, out_dir=DIR)`` writes ``DIR/<probe>.csv`` (the frame) and
``DIR/<probe>.json`` (``{"probe", "title", "quantities", "params", "columns", "rows",
"summary"}``; ``title`` and ``quantities`` are the probe's own words, which reports draw
with), each atomically. Loading a run directory is the application's part
(:func:`memloss.runs.probe_run`).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from tqdm.auto import tqdm

from memloss.core.atomic import atomic_write_text
from memloss.models import Net

from .base import PROBES, NotApplicable, Probe, ProbeResult, json_safe

__all__ = ["run_probes", "make_probe", "list_probes", "write_result"]

log = logging.getLogger(__name__)


def list_probes() -> list[str]:
    """The registered probes, by rank (memory loss first), then name."""
    return sorted(PROBES.list(), key=lambda n: (PROBES.get(n).rank, n))


def make_probe(name: str, **params: Any) -> Probe:
    """Build a registered probe, e.g. ``make_probe("impulse", t0=5)``."""
    cls = PROBES.get(name)
    try:
        return cls(**params)  # type: ignore[call-arg]
    except TypeError as e:
        raise ValueError(f"probe {name!r}: bad parameters {sorted(params)} ({e}); see "
                         f"docs/diagnostics.md for its parameters") from None


def write_result(out_dir: Path, probe: Probe, result: ProbeResult,
                 source: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``<probe>.csv`` and ``<probe>.json`` into ``out_dir`` atomically; ``source``
    (what weights were measured, e.g. the run and its checkpoint) goes into the JSON."""
    out_dir = Path(out_dir)
    csv_path, json_path = out_dir / f"{probe.name}.csv", out_dir / f"{probe.name}.json"
    atomic_write_text(csv_path, result.frame.to_csv(index=False))
    meta = {"probe": probe.name, **probe.words(), "params": json_safe(probe.params),
            "columns": list(result.frame.columns), "rows": len(result.frame),
            "summary": json_safe(result.summary), **dict(source or {})}
    atomic_write_text(json_path, json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return csv_path, json_path


def run_probes(net: Net, task: Any, names: Sequence[str] | None = None,
               out_dir: "str | os.PathLike | None" = None, *,
               params: Mapping[str, Mapping[str, Any]] | None = None, seed: int = 0,
               source: Mapping[str, Any] | None = None) -> dict[str, ProbeResult]:
    """Run the probes ``names`` (default: all) on ``net`` and ``task``.

    Results are written to ``out_dir`` when given. ``params`` overrides probe parameters by
    probe name. Each probe gets its own generator seeded from ``seed`` and its name, so a
    probe's numbers do not depend on which other probes ran. ``source`` is recorded in each
    ``<probe>.json`` (which weights were measured). When all probes run (no ``names``), a
    probe that cannot measure the net (:class:`NotApplicable`: a step-wise probe on
    ``output-zoneout``, saturation on a relu RNN) is left out with a warning; a probe named
    explicitly raises it.
    """
    if not isinstance(net, Net):
        raise ValueError(f"run_probes takes a memloss Net, got {type(net).__name__}")
    every = not names
    names = list(names) if names else list_probes()
    params = dict(params or {})
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ValueError(f"params given for probes that do not run: {unknown}; running {names}")
    probes = [make_probe(n, **dict(params.get(n, {}))) for n in names]
    target = Path(out_dir) if out_dir is not None else None
    was_training = net.training
    net.eval()
    results: dict[str, ProbeResult] = {}
    try:
        bar = tqdm(probes, desc="probes", unit="probe", disable=not sys.stderr.isatty())
        for probe in bar:
            bar.set_postfix_str(probe.name)
            gen = torch.Generator().manual_seed(seed + zlib.crc32(probe.name.encode()) % 2**31)
            try:
                result = probe(net, task, generator=gen)
            except NotApplicable as e:
                if not every:
                    raise
                log.warning("%s left out: %s", probe.name, e)
                continue
            results[probe.name] = result
            if target is not None:
                csv_path, _ = write_result(target, probe, result, source)
                log.debug("%s: %d rows -> %s", probe.name, len(result.frame), csv_path)
    finally:
        net.train(was_training)
    return results
