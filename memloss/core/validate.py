"""One validator per kind of value. Each raises ``ValueError`` with one line naming the owner,
the field, the value and what is accepted, e.g. ``TrainConfig.lr must be a number in
(0, inf), got -1``."""
from __future__ import annotations

import math
from typing import Any, Iterable

__all__ = ["integer", "number", "rate", "choice", "flag", "optional", "shown", "MAX_INT",
           "MAX_SEED", "device", "float_dtype", "generator", "real_tensor", "token_ids"]

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


# --- arguments of the Python API (torch objects) ----------------------------------------------
def device(owner: str, value: Any) -> Any:
    """A device torch can use here: a name torch parses (``cpu``, ``cuda:0``) or a
    ``torch.device``; CUDA only when this build and machine have it."""
    import torch

    if value is None:
        return None
    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{owner}: device={shown(value)} is not a device; use 'cpu' or "
                         "'cuda' (or 'cuda:N')") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{owner}: device={shown(value)} but CUDA is not available (this torch "
                         "build or machine has none); use device='cpu'")
    return value


def float_dtype(owner: str, value: Any) -> Any:
    """None or a floating-point ``torch.dtype`` (weights must be able to learn)."""
    import torch

    if value is None:
        return None
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ValueError(f"{owner}: dtype={shown(value)} is not a floating-point dtype; use "
                         "torch.float32, torch.float64, torch.float16 or torch.bfloat16")
    return value


def generator(owner: str, value: Any) -> Any:
    """None or a ``torch.Generator`` (not a seed: make one with
    ``torch.Generator().manual_seed(seed)``)."""
    import torch

    if value is not None and not isinstance(value, torch.Generator):
        raise ValueError(f"{owner}: generator={shown(value)} is not a torch.Generator; pass "
                         "torch.Generator().manual_seed(SEED), or None")
    return value


def real_tensor(owner: str, name: str, value: Any) -> Any:
    """A tensor that holds values (not on the ``meta`` device)."""
    import torch

    if isinstance(value, torch.Tensor) and value.device.type == "meta":
        raise ValueError(f"{owner}: {name} is a meta tensor (a shape without values); pass a "
                         "tensor on 'cpu' or 'cuda'")
    return value


def token_ids(owner: str, ids: Any, vocab_size: int) -> Any:
    """Token ids: an int64 or int32 tensor of values in ``[0, vocab_size)`` (the range is
    checked on CPU tensors in eager mode; on a GPU it would cost a device sync every forward,
    and under ``torch.compile``/``torch.export`` it would be a data-dependent branch)."""
    import torch

    if ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{owner}: token ids must be torch.int64 (or int32), got {ids.dtype}; "
                         "convert them with .long()")
    if ids.numel() and ids.device.type == "cpu" and not torch.compiler.is_compiling():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab_size:
            bad = low if low < 0 else high
            raise ValueError(f"{owner}: token id {bad} is outside the vocabulary [0, "
                             f"{vocab_size}); check the tokenizer or vocab_size")
    return ids
