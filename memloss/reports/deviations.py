"""Where a measured number deviates, and the likely reason the project knows.

A measured number is flagged when it differs from the paper's by more than the metric's
tolerance (:class:`memloss.reports.wording.Metric`: 10 points for accuracies and error
rates, 10% of the paper's value for perplexities and bits per character), or when it lies
more than that tolerance below chance (``config.json["task_info"]["chance"]``). The note
names what deviates and the reasons found in the run directory: how the run's setup
differs from the paper's (``config.json["info"]["preset"]["paper_settings"]``: budget,
size, optimiser, data stand-in) and, for a deterministic test number, what MC inference
measured on the same net.
"""
from __future__ import annotations

import math
from typing import Any

from .paper import PaperRow
from .runs import RunRecord
from .wording import Metric

__all__ = ["chance_level", "setup_differences", "deviation_note", "paper_number"]

#: settings compared with the paper's, and how a difference is worded (the kind of reason)
_SETUP: tuple[tuple[str, str, str], ...] = (
    ("epochs", "budget", "{run} epochs (paper {paper})"),
    ("max_steps", "budget", "stopped after {run} steps (paper: no limit)"),
    ("hidden_size", "size", "{run} units (paper {paper})"),
    ("num_layers", "size", "{run} layers (paper {paper})"),
    ("optimizer", "optimiser", "{run} (paper {paper})"),
    ("lr", "optimiser", "learning rate {run} (paper {paper})"),
    ("batch_size", "budget", "minibatches of {run} (paper {paper})"),
)


def chance_level(run: RunRecord) -> float | None:
    """The task's chance level as its run recorded it, or None."""
    info = run.config.get("task_info")
    value = info.get("chance") if isinstance(info, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def _flat(settings: dict) -> dict[str, Any]:
    out = {k: v for k, v in settings.items() if k not in ("net", "task_params")}
    if isinstance(settings.get("net"), dict):
        out.update(settings["net"])
    return out


def setup_differences(run: RunRecord) -> list[str]:
    """How the run's setup differs from the paper row it reproduces, in words, grouped by
    kind: ``["budget: 5 epochs (paper 5000)", "size: 64 units (paper 256)", ...]``. Empty
    when the run records no paper setup."""
    info = run.config.get("info")
    rec = info.get("preset") if isinstance(info, dict) else None
    paper = rec.get("paper_settings") if isinstance(rec, dict) else None
    if not isinstance(paper, dict):
        return []
    mine = _flat(run.train)
    found: dict[str, list[str]] = {}
    for key, kind, text in _SETUP:
        if key not in paper and not (key == "max_steps" and mine.get(key)):
            continue
        want, got = paper.get(key), mine.get(key)
        if got is None or got == want:
            continue
        found.setdefault(kind, []).append(text.format(run=got, paper=want))
    task = paper.get("task")
    source = (paper.get("task_params") or {}).get("source")
    run_source = (run.train.get("task_params") or {}).get("source")
    if task and run.train.get("task") and task != run.train.get("task"):
        found.setdefault("data stand-in", []).append(f"{run.train['task']} for {task}")
    elif source and run_source and source != run_source:
        found.setdefault("data stand-in", []).append(f"{run_source} for {source}")
    return [f"{kind}: {', '.join(items)}" for kind, items in found.items()]


def paper_number(row: PaperRow | None, key: str) -> tuple[float, str] | None:
    """The paper's number for ``key`` (``train``, ``test``, ...) and its bound (``<``, ``>``
    or ``""``), or None."""
    if row is None or key not in row.reported:
        return None
    return float(row.reported[key]), str(row.bounds.get(key, ""))


def _off(value: float, paper: tuple[float, str], m: Metric) -> bool:
    number, bound = paper
    tol = m.tolerance * abs(number) if m.relative else m.tolerance
    if bound == "<":
        return value - number > tol
    if bound == ">":
        return number - value > tol
    return abs(value - number) > tol


def deviation_note(value: float | None, paper: tuple[float, str] | None, m: Metric,
                   chance: float | None, *, reasons: list[str] = (),  # type: ignore[assignment]
                   mc: float | None = None) -> str | None:
    """The flag note for one measured number, or None when it does not deviate: it
    differs from the paper's by more than the metric's tolerance, or (higher-is-better
    metrics) lies more than the tolerance below chance without the paper reporting so."""
    if value is None or not math.isfinite(value):
        return None
    parts = []
    if paper is not None and _off(value, paper, m):
        shown = f"{paper[1]}{m.show(paper[0])}"
        parts.append(f"{m.show(value)} vs the paper's {shown} (more than "
                     f"{m.tolerance_words()} off)")
    paper_below = paper is not None and paper[1] == "<" and chance is not None \
        and paper[0] <= chance
    if (chance is not None and not m.lower_is_better and not m.relative
            and value < chance - m.tolerance and not paper_below):
        parts.append(f"{m.show(value)} is below chance ({m.show(chance)})")
    if not parts:
        return None
    if mc is not None and math.isfinite(mc) and (mc - value if not m.lower_is_better
                                                  else value - mc) > m.tolerance:
        parts.append(f"MC inference on the same net gives {m.show(mc)}: the deterministic "
                     "test-time scaling loses what the net learned")
    if reasons:
        parts.append("setup differs from the paper's: " + "; ".join(reasons))
    return "; ".join(parts) + "."
