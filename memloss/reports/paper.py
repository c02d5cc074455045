"""The paper's number for a run: the paper row its config.json records (``info.preset``).

The application records the row when the run is created: the preset it was started from
(``memloss train PRESET``, the demo), or the preset with the same task, task setting and
scheme (see :func:`memloss.presets.match_preset`). Reports only read it.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["paper_row", "paper_value", "PaperRow"]


@dataclass(frozen=True)
class PaperRow:
    """A paper's row as recorded in a run's ``config.json["info"]["preset"]``."""

    name: str
    reported: dict
    bounds: dict
    cpu_of: str | None = None


def paper_row(config: dict) -> PaperRow | None:
    """The paper row a run (its whole config.json dict) reproduces, or None."""
    info = config.get("info")
    rec = info.get("preset") if isinstance(info, dict) else None
    if not isinstance(rec, dict) or not isinstance(rec.get("reported"), dict):
        return None
    return PaperRow(str(rec.get("name", "")), dict(rec["reported"]), dict(rec.get("bounds") or {}),
                    rec.get("cpu_of"))


def paper_value(row: PaperRow | None, key: str) -> str:
    """The reported number as text (``"<0.25"`` for bounds), or '' when there is none."""
    if row is None or key not in row.reported:
        return ""
    return f"{row.bounds.get(key, '')}{row.reported[key]:g}"
