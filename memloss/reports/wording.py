"""Words for what the report shows: metrics, axes, inference modes.

Run directories name things by code (``perplexity``, ``train-mode``); a reader needs words
and units. A probe's words (its title, the words and unit of each quantity) are the
probe's own: declared on its class (:class:`memloss.diagnostics.Probe`), written into its
JSON file and read from there (:func:`memloss.reports.describe.probe_words`); a quantity
no probe describes falls back to the metric of that name, else to its code name with the
unit left as "as measured", so a new probe still draws.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

__all__ = ["Metric", "Quantity", "METRICS", "QUANTITIES", "X_AXES", "MODES", "metric", "quantity",
           "x_axis", "mode_words", "axis_label", "counted", "deviate"]


@dataclass(frozen=True)
class Metric:
    """A task metric: its words, unit, direction, and the tolerance beyond which a measured
    value is flagged as differing from the paper (absolute, or ``relative`` to the paper)."""

    words: str
    unit: str
    lower_is_better: bool = False
    tolerance: float = 0.10
    relative: bool = False
    percent: bool = False  # shown as a percentage (fractions in [0, 1])

    def show(self, value: float) -> str:
        return f"{100 * value:.1f}%" if self.percent else f"{value:.4g}"

    def tolerance_words(self) -> str:
        if self.relative:
            return f"{100 * self.tolerance:g}% of the paper's value"
        return f"{100 * self.tolerance:g} points" if self.percent else f"{self.tolerance:g}"


METRICS: dict[str, Metric] = {
    "accuracy": Metric("accuracy", "fraction correct", percent=True),
    "error": Metric("error rate", "fraction wrong", lower_is_better=True, percent=True),
    "f1": Metric("F1 score", "fraction", percent=True),
    "perplexity": Metric("perplexity", "per token", lower_is_better=True, relative=True),
    "bpc": Metric("bits per character", "bits", lower_is_better=True, relative=True),
    "loss": Metric("loss", "nats per prediction", lower_is_better=True, relative=True),
    "nll": Metric("negative log-likelihood", "nats", lower_is_better=True, relative=True),
    "mse": Metric("mean squared error", "squared units", lower_is_better=True, relative=True),
    "rmse": Metric("root mean squared error", "units", lower_is_better=True, relative=True),
    "mae": Metric("mean absolute error", "units", lower_is_better=True, relative=True),
}


def metric(name: str) -> Metric:
    return METRICS.get(name, Metric(name, "as measured", relative=True))


@dataclass(frozen=True)
class Quantity:
    words: str
    unit: str


#: the words of the task metrics as quantities (training curves, test-time scaling)
QUANTITIES: dict[str, Quantity] = {name: Quantity(m.words, m.unit) for name, m in METRICS.items()}


def quantity(name: str, own: Mapping[str, Quantity] | None = None) -> Quantity:
    """The words of quantity ``name``: the owner's (``own``, e.g. a probe's), else the metric
    of that name, else the code name "as measured"."""
    if own and name in own:
        return own[name]
    return QUANTITIES.get(name, Quantity(name, "as measured"))


def axis_label(name: str, own: Mapping[str, Quantity] | None = None) -> str:
    """``"hidden-state norm ||h_t|| (L2 norm)"``: a y-axis label with its unit."""
    q = quantity(name, own)
    return f"{q.words} ({q.unit})"


X_AXES: dict[str, str] = {
    "t": "time step t",
    "length": "sequence length (steps)",
    "lag": "lag k (steps back)",
    "k": "k",
    "bin": "bin centre",
    "step": "training step (minibatches)",
}


def x_axis(name: str) -> str:
    return X_AXES.get(name, name)


MODES: dict[str, str] = {
    "deterministic": "deterministic (expected masks)",
    "other-scaling": "deterministic, other scaling convention",
    "mc": "MC (sampled masks, averaged)",
    "train-mode": "train-mode (one mask sample)",
}


def mode_words(mode: str) -> str:
    return MODES.get(mode, mode)


def counted(n: int, noun: str) -> str:
    """``counted(1, "run")`` -> ``"1 run"``, ``counted(3, "run")`` -> ``"3 runs"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def deviate(n: int, noun: str = "number") -> str:
    """``"1 number deviates"``, ``"3 numbers deviate"``."""
    return f"{counted(n, noun)} deviate{'s' if n == 1 else ''}"
