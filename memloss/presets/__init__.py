"""Paper presets: each row of the source papers' tables (and the curves of their figures) as
a named TrainConfig plus the number the paper reports for it (``memloss ls presets``;
``memloss train PRESET``).

Every setup and number is taken from the papers in ``shared/papers/`` (section and table
named in each preset); where a paper leaves a setting unstated, the preset's ``notes`` say
so and what is used instead. Each preset has a ``-cpu`` variant: the same scheme at a size
that trains in minutes on a CPU, on an offline stand-in where the paper's data is not part
of memloss (its numbers are not comparable with the paper's; docs/fidelity.md). Rows that
cannot be expressed are listed with their reason in :data:`OMITTED`.

One module per paper (:mod:`.semeniuta`, :mod:`.zaremba`, :mod:`.gal`, :mod:`.krueger`),
registered in that order; the machinery is in :mod:`.base`.
"""
from __future__ import annotations

from . import semeniuta, zaremba, gal, krueger  # noqa: F401  (registration, in this order)
from .base import (GAL, KRUEGER, OMITTED, PRESETS, SEMENIUTA, ZAREMBA, Preset, get_preset,
                   list_presets, match_preset, scheme_key)

__all__ = ["Preset", "PRESETS", "get_preset", "list_presets", "OMITTED", "match_preset",
           "scheme_key", "SEMENIUTA", "ZAREMBA", "GAL", "KRUEGER"]
