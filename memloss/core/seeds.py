"""The random streams of a run, each seeded from the run's one ``seed``.

A run draws from separate generators so that evaluating, probing or resuming never moves
another stream: weight initialisation, the training data order, the training masks, and
the masks of evaluations (a fresh generator per evaluation, so results repeat). The offsets
are part of the run-directory format: changing one changes every stored result.
"""
from __future__ import annotations

__all__ = ["STREAMS", "stream_seed"]

#: stream name -> offset added to the run's seed
STREAMS: dict[str, int] = {
    "init": 0,          # weight initialisation
    "data": 1,          # training data order
    "masks": 2,         # training-time dropout / zoneout masks
    "eval": 3,          # masks of validation and test evaluations
    "train-eval": 7,    # masks of the after-training evaluation on training sequences (demo)
}


def stream_seed(seed: int, stream: str) -> int:
    """The seed of ``stream`` for a run seeded with ``seed``."""
    try:
        return seed + STREAMS[stream]
    except KeyError:
        raise ValueError(f"unknown random stream {stream!r}; valid: {', '.join(STREAMS)}") from None
