"""One validator per kind of value. Each raises ``ValueError`` with one line naming the owner,
the field, the value and what is accepted, e.g. ``TrainConfig.lr must be a number in
(0, inf), got -1``."""
from __future__ import annotations

import math
from typing import Any, Iterable

__all__ = ["integer", "number", "rate", "choice", "flag", "optional", "shown", "MAX_INT",
           "MAX_SEED"]

#: the largest integer any count, size or seed may take (torch seeds and sizes are int64)
MAX_INT = 2**63 - 1
#: the largest seed: a run's streams add small offsets to it (memloss.core.seeds)
MAX_SEED = 2**62
#: the most characters of a user's value an error message echoes back
SHOWN_CHARS = 60


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters (``...`` and the full length after a cut),
    so that a hostile or huge value is never echoed back whole."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def integer(owner: str, name: str, value: Any, minimum: int = 1, maximum: int = MAX_INT) -> int:
    """An integer (not a bool) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        top = "" if maximum == MAX_INT else f" and <= {maximum}"
        raise ValueError(f"{owner}.{name} must be an integer >= {minimum}{top}, got "
                         f"{shown(value)}")
    return value


def number(owner: str, name: str, value: Any, low: float = -math.inf, high: float = math.inf,
           *, low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number (int or float, not a bool) within the given bounds."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low)
    ok = ok and (value < high if high_open else value <= high)
    if not ok:
        left = "(" if low_open or low == -math.inf else "["
        right = ")" if high_open or high == math.inf else "]"
        what = ("a finite number" if low == -math.inf and high == math.inf
                else f"a number in {left}{low:g}, {high:g}{right}")
        raise ValueError(f"{owner}.{name} must be {what}, got {shown(value)}")
    return float(value)


def rate(owner: str, name: str, value: Any) -> float:
    """A dropout or zoneout probability in ``[0, 1)``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: {name}={shown(value)} is outside [0, 1); pass a rate such "
                         "as 0.25")
    return float(value)


def choice(owner: str, name: str, value: Any, choices: Iterable[str]) -> str:
    """One of ``choices`` (strings)."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{owner}.{name}={shown(value)} is not one of {', '.join(choices)}")
    return value


def flag(owner: str, name: str, value: Any) -> bool:
    """A bool (``True``/``False``), not a string or a number."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}.{name} must be true or false, got {shown(value)}")
    return value


def optional(check: Any, owner: str, name: str, value: Any, *args: Any, **kwargs: Any) -> Any:
    """``None``, or a value that passes ``check(owner, name, value, *args, **kwargs)``."""
    return None if value is None else check(owner, name, value, *args, **kwargs)
