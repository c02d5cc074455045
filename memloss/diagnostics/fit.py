"""Small fits used by several probes: log-linear slope, half-life, per-step factor."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["log_slope", "half_life", "step_factor"]


def log_slope(t: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``ln y`` against ``t`` over the finite, positive ``y``
    (NaN when fewer than two such points)."""
    t_arr = np.asarray(t, dtype=float)
    y_arr = np.asarray(y, dtype=float)
    if t_arr.shape != y_arr.shape:
        raise ValueError(f"log_slope: t and y differ in shape, {t_arr.shape} vs {y_arr.shape}")
    ok = np.isfinite(y_arr) & (y_arr > 0) & np.isfinite(t_arr)
    if ok.sum() < 2 or np.ptp(t_arr[ok]) == 0:
        return math.nan
    return float(np.polyfit(t_arr[ok], np.log(y_arr[ok]), 1)[0])


def step_factor(slope: float) -> float:
    """Per-step multiplicative factor ``exp(slope)`` of a log-linear fit."""
    return math.exp(slope) if math.isfinite(slope) else math.nan


def half_life(slope: float) -> float:
    """Steps for a quantity decaying with log-slope ``slope`` to halve (inf if it does not
    decay, NaN if the slope is unknown)."""
    if not math.isfinite(slope):
        return math.nan
    return math.log(2.0) / -slope if slope < 0 else math.inf
