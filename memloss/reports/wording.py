"""Words for what the report shows: metrics, probe quantities, axes, inference modes.

Run directories and probe tables name things by code (``grad_c``, ``eq17_ratio``,
``train-mode``); a reader needs words and units. Every name the probes write
(``docs/diagnostics.md``) has an entry here; an unknown name falls back to the code name
with the unit left as "as measured", so a new probe still draws (with its code name).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Metric", "Quantity", "METRICS", "QUANTITIES", "PROBE_TITLES", "PROBE_ORDER", "X_AXES", "MODES",
           "metric", "quantity", "probe_title", "x_axis", "mode_words", "axis_label", "counted",
           "deviate"]


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


QUANTITIES: dict[str, Quantity] = {
    # state-decay
    "h_norm": Quantity("hidden-state norm ||h_t||", "L2 norm"),
    "c_norm": Quantity("cell-state norm ||c_t||", "L2 norm"),
    "h_ratio": Quantity("||h_t|| relative to training mode", "ratio"),
    "c_ratio": Quantity("||c_t|| relative to training mode", "ratio"),
    "eq17": Quantity("weight of the initial state, cell dropped (Semeniuta eq. 17)", "weight"),
    "eq19": Quantity("weight of each update, update dropped (Semeniuta eq. 19)", "weight"),
    "eq17_ratio": Quantity("eq. 17 weight relative to training mode", "ratio"),
    "eq19_ratio": Quantity("eq. 19 weight relative to training mode", "ratio"),
    "decay_rate": Quantity("per-step decay factor of the state norm", "factor per step"),
    # impulse
    "delta_h": Quantity("change of h_t after a perturbation", "L2 norm"),
    "delta_c": Quantity("change of c_t after a perturbation", "L2 norm"),
    "delta_output": Quantity("change of the output after a perturbation", "L2 norm of logits"),
    "delta_h_half_life": Quantity("half-life of the change of h", "steps"),
    "delta_c_half_life": Quantity("half-life of the change of c", "steps"),
    "delta_output_half_life": Quantity("half-life of the change of the output", "steps"),
    # gradient-flow
    "grad_h": Quantity("gradient norm ||dL/dh_t||", "Frobenius norm"),
    "grad_c": Quantity("gradient norm ||dL/dc_t||", "Frobenius norm"),
    "grad_h_log_slope": Quantity("slope of ln ||dL/dh_t|| over t", "per step"),
    "grad_c_log_slope": Quantity("slope of ln ||dL/dc_t|| over t", "per step"),
    "jacobian_h": Quantity("spectral norm of dh_t/dh_(t-1)", "spectral norm"),
    "jacobian_state": Quantity("spectral norm of d(h,c)_t/d(h,c)_(t-1)", "spectral norm"),
    # retention
    "capacity": Quantity("linear memory of the input k steps back", "squared correlation"),
    "memory_capacity": Quantity("memory capacity (sum over lags)", "squared correlation"),
    "chance": Quantity("majority-class rate", "fraction"),
    # saturation
    "left_saturated": Quantity("fraction of gate values below 0.1", "fraction"),
    "right_saturated": Quantity("fraction of gate values above 0.9", "fraction"),
    "gate_histogram": Quantity("share of gate activations", "fraction of activations"),
    # uncertainty and test-time scaling
    "ece": Quantity("expected calibration error", "fraction"),
    "entropy": Quantity("predictive entropy", "nats"),
    "mutual_information": Quantity("mutual information (MC)", "nats"),
    "reliability_confidence": Quantity("mean confidence in the bin", "probability"),
    "reliability_accuracy": Quantity("accuracy in the bin", "fraction correct"),
    "reliability_fraction": Quantity("share of predictions in the bin", "fraction"),
}
for _name, _m in METRICS.items():
    QUANTITIES.setdefault(_name, Quantity(_m.words, _m.unit))


def quantity(name: str) -> Quantity:
    return QUANTITIES.get(name, Quantity(name, "as measured"))


def axis_label(name: str) -> str:
    """``"hidden-state norm ||h_t|| (L2 norm)"``: a y-axis label with its unit."""
    q = quantity(name)
    return f"{q.words} ({q.unit})"


PROBE_TITLES: dict[str, str] = {
    "state-decay": "How the state fades over time",
    "impulse": "How long a perturbation is remembered",
    "gradient-flow": "Gradient flow back through time",
    "test-time-scaling": "Accuracy on longer sequences under each inference mode",
    "saturation": "Gate saturation",
    "retention": "What the state still holds about past inputs",
    "uncertainty": "Calibration and uncertainty",
}


#: the order probe sections appear in: memory loss first
PROBE_ORDER = ("state-decay", "test-time-scaling", "impulse", "gradient-flow", "retention",
               "uncertainty", "saturation")


def probe_title(name: str) -> str:
    return PROBE_TITLES.get(name, name)


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
