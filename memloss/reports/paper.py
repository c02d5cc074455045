"""Find the paper's number for a run: the preset (``memloss.presets``) it reproduces.

A run matches a preset when its config.json records one (``info.preset``, written by
``memloss train PRESET`` and the demo), when it was started from the preset by name (the
preset's name is on its command line), or when it trains the same task with the same scheme and the same
task setting (e.g. ``length``). Sizes of the data splits, the model size and the
optimiser may differ (CPU-sized reproductions), and so may the dropout scaling convention
(``inverted`` or ``expectation``): it is an implementation choice the paper's number does
not depend on. Full-size presets are preferred over their ``-cpu`` variants.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from memloss.models.schemes import parse_scheme

__all__ = ["match_preset", "paper_value", "scheme_key", "PaperRow"]

log = logging.getLogger(__name__)

#: task parameters that do not change which experiment a run is
_SIZE_PARAMS = ("train_size", "valid_size", "test_size", "seed")


def _presets() -> Any:
    try:
        from memloss.presets import PRESETS
    except ImportError:  # presets are optional for reports
        return None
    return PRESETS


def scheme_key(spec: str) -> str:
    """A scheme's full text form without its scaling convention."""
    return re.sub(r",?scaling=(inverted|expectation)", "", parse_scheme(spec).spec).replace(":,", ":")


def _task_key(params: dict) -> dict:
    return {k: v for k, v in params.items() if k not in _SIZE_PARAMS}


@dataclass(frozen=True)
class PaperRow:
    """A paper's row as recorded in a run's ``config.json["info"]["preset"]``."""

    name: str
    reported: dict
    bounds: dict
    cpu_of: str | None = None


def _recorded(config: dict) -> PaperRow | None:
    info = config.get("info")
    rec = info.get("preset") if isinstance(info, dict) else None
    if not isinstance(rec, dict) or not isinstance(rec.get("reported"), dict):
        return None
    return PaperRow(str(rec.get("name", "")), dict(rec["reported"]), dict(rec.get("bounds") or {}),
                    rec.get("cpu_of"))


def match_preset(config: dict) -> Any:
    """The preset a run (its whole config.json dict) reproduces, or None: the one recorded
    in ``info.preset`` (``memloss train PRESET``, the demo), else found by name or setup."""
    recorded = _recorded(config)
    if recorded is not None:
        return recorded
    presets = _presets()
    if presets is None:
        return None
    train = config.get("train", {})
    names = presets.list()
    for token in config.get("command") or []:
        if isinstance(token, str) and token in names:
            return presets.get(token)
    try:
        key = scheme_key(train.get("scheme", "none"))
    except ValueError:
        return None
    task, params = train.get("task"), _task_key(train.get("task_params", {}))
    found = []
    for name in names:
        p = presets.get(name)
        c = p.config
        if c.task != task or _task_key(c.task_params) != params:
            continue
        if scheme_key(c.scheme) == key:
            found.append(p)
    found.sort(key=lambda p: (p.cpu_of is not None, p.name))
    return found[0] if found else None


def paper_value(preset: Any, key: str) -> str:
    """The reported number as text (``"<0.25"`` for bounds), or '' when there is none."""
    if preset is None or key not in preset.reported:
        return ""
    return f"{preset.bounds.get(key, '')}{preset.reported[key]:g}"
