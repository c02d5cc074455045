"""From what a command line names to a checked :class:`~memloss.config.TrainConfig`:
``memloss train``, ``memloss sweep`` and a sweep's workers resolve a task or preset name
plus ``--scheme`` and ``--set`` here, and record the preset a run reproduces."""
from __future__ import annotations

from memloss.build import build_task, net_config
from memloss.config import TrainConfig, apply_overrides
from memloss.core.registry import closest
from memloss.presets import PRESETS
from memloss.tasks import TASKS

__all__ = ["resolve_config", "preset_info"]


def resolve_config(target: str, scheme: str | None = None, sets: list[str] | None = None
                   ) -> TrainConfig:
    """A TrainConfig from a task or preset name plus ``--scheme`` and ``--set`` overrides.

    Everything is checked here (names, options, task parameters, the net), so a bad
    command line fails before any training starts.
    """
    if target in PRESETS:
        config = PRESETS.get(target).config
        if scheme is not None:
            config = config.replace(scheme=scheme)
    elif target in TASKS:  # the scheme given at once: its text is parsed once
        config = TrainConfig(task=target, net={} if scheme is None else {"scheme": scheme})
    else:
        close = closest(str(target).lower(), TASKS.list() + PRESETS.list())
        raise ValueError(f"unknown task or preset {target!r}; "
                         + (f"did you mean {', '.join(close)}? " if close else "")
                         + f"({len(TASKS.list())} tasks, {len(PRESETS.list())} presets: "
                         "`memloss ls tasks|presets`)")
    config = apply_overrides(config, sets or [])
    net_config(config, build_task(config))  # validates task parameters, scheme and sizes
    return config


def preset_info(target: str) -> dict:
    """What config.json records about a preset: its paper row and reported numbers."""
    if target not in PRESETS:
        return {}
    return {"preset": PRESETS.get(target).record()}
