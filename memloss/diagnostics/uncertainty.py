"""``uncertainty``: predictive entropy and calibration under MC and deterministic inference.

The batches are scored in the task's order by one runner per mode, so a streamed task's
state is carried from batch to batch and each ``mc`` network keeps its masks (Gal eq. 4);
probabilities are computed in the net's dtype. Predictions are taken where the task scores
them (the last step for sequence labels, every counted step for per-step targets). For each mode: ``accuracy``, ``nll`` (mean
negative log-likelihood of the target class), ``ece`` (expected calibration error over
``bins`` equal-width confidence bins: ``sum_b n_b/N |acc_b - conf_b|``), ``entropy``
(mean predictive entropy, nats); for ``mc`` also ``mutual_information`` (entropy of the
mean minus the mean entropy of the K samples, Gal's epistemic part). Reliability-diagram
rows (``reliability_confidence``, ``reliability_accuracy``, ``reliability_fraction``) carry
the bin centre in ``bin``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from memloss.core import validate
from memloss.models import Net
from memloss.tasks import Batch

from memloss.models.inference import DETERMINISTIC, MC, OTHER_SCALING, TRAIN_MODE, Runner, \
    mode_scaling

from .base import PROBES, Probe, ProbeResult, Quantity, checked, default_generator, make_frame
from .data import iter_batches, modes_field, split_field

__all__ = ["Uncertainty", "expected_calibration_error", "entropy", "scored_positions"]


def entropy(p: Tensor) -> Tensor:
    """Entropy (nats) of distributions along the last axis."""
    return -(p * torch.log(p.clamp_min(1e-12))).sum(-1)


def expected_calibration_error(confidence: Tensor, correct: Tensor, bins: int = 15
                               ) -> tuple[float, list[dict[str, float]]]:
    """ECE over ``bins`` equal-width bins of the confidence in [0, 1] (right-closed, the
    first bin includes 0), and per-bin rows ``{bin, confidence, accuracy, fraction}``
    (empty bins have NaN confidence/accuracy and fraction 0)."""
    if confidence.shape != correct.shape or confidence.dim() != 1:
        raise ValueError(f"expected_calibration_error: confidence and correct must be 1-D of one "
                         f"length, got {tuple(confidence.shape)} and {tuple(correct.shape)}")
    if confidence.numel() == 0:
        raise ValueError("expected_calibration_error: no predictions to score")
    conf, corr = confidence.double().cpu(), correct.double().cpu()
    idx = torch.clamp(torch.ceil(conf * bins).long() - 1, 0, bins - 1)
    N, ece, table = conf.numel(), 0.0, []
    for b in range(bins):
        sel = idx == b
        n = int(sel.sum())
        c = float(conf[sel].mean()) if n else math.nan
        a = float(corr[sel].mean()) if n else math.nan
        if n:
            ece += n / N * abs(a - c)
        table.append({"bin": (b + 0.5) / bins, "confidence": c, "accuracy": a, "fraction": n / N})
    return ece, table


def scored_positions(probs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
    """``(probs [N, C], labels [N])`` where the task scores predictions."""
    y = batch.targets
    if y.is_floating_point():
        raise ValueError("the uncertainty probe needs class targets (integer labels); this task "
                         "has real-valued targets")
    if y.dim() == 1:
        return batch.last(probs), y
    keep = torch.ones_like(y, dtype=torch.bool) if batch.weights is None else batch.weights > 0
    return probs[keep], y[keep]


@PROBES.register("uncertainty", "MC vs deterministic inference: predictive entropy, mutual "
                 "information, calibration (ECE, NLL, reliability bins)")
@dataclass(frozen=True)
class Uncertainty(Probe):
    """Args: ``samples`` K mask sets for ``mc``; ``bins`` calibration bins; up to
    ``max_batches`` batches of ``batch_size`` from ``split``."""

    name: ClassVar[str] = "uncertainty"
    title: ClassVar[str] = "Calibration and uncertainty"
    rank: ClassVar[int] = 60
    quantities: ClassVar[dict[str, Quantity]] = {
        "accuracy": Quantity("accuracy", "fraction correct"),
        "nll": Quantity("negative log-likelihood", "nats"),
        "ece": Quantity("expected calibration error", "fraction"),
        "entropy": Quantity("predictive entropy", "nats"),
        "mutual_information": Quantity("mutual information (MC)", "nats"),
        "reliability_confidence": Quantity("mean confidence in the bin", "probability"),
        "reliability_accuracy": Quantity("accuracy in the bin", "fraction correct"),
        "reliability_fraction": Quantity("share of predictions in the bin", "fraction"),
    }
    samples: int = checked(20, validate.integer)
    bins: int = checked(15, validate.integer)
    batch_size: int = checked(256, validate.integer)
    max_batches: int = checked(4, validate.integer)
    split: str = checked("test", split_field)
    modes: tuple[str, ...] = checked((DETERMINISTIC, OTHER_SCALING, MC, TRAIN_MODE), modes_field,
                                     DETERMINISTIC, OTHER_SCALING, MC, TRAIN_MODE)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        return {"samples": 2, "batch_size": 16, "max_batches": 1}

    @staticmethod
    def _predict(runner: Runner, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """Mean probabilities ``[B, T, C]`` (in the net's dtype) and, for several networks
        (mc), the mean of their entropies ``[B, T]``."""
        probs = [torch.softmax(out, dim=-1) for out in runner(batch.inputs, carry=batch.carry)]
        mean = torch.stack(probs).mean(0)
        if runner.mode != MC:
            return mean, None
        return mean, torch.stack([entropy(p) for p in probs]).mean(0)

    def __call__(self, net: Net, task: Any, *, generator: torch.Generator | None = None
                 ) -> ProbeResult:
        gen = default_generator(generator)
        batches = list(iter_batches(net, task, self.split, self.batch_size, self.max_batches))
        if not batches:
            raise ValueError(f"{self.name}: task yielded no {self.split!r} batch")
        rows: list[dict[str, Any]] = []
        summary: dict[str, Any] = {"samples": self.samples, "modes": {}}
        was_training = net.training
        net.eval()
        try:
            for mode in self.modes:
                self._mode(net, batches, mode, gen, rows, summary)
        finally:
            net.train(was_training)
        frame = make_frame(self.name, net, rows, extra_columns=("bin", "count"))
        return ProbeResult(frame, summary)

    def _mode(self, net: Net, batches: list[Batch], mode: str, gen: torch.Generator,
              rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
        """Score ``batches`` in order under ``mode`` with one runner (state carried on streams,
        mc networks fixed); append the rows and the summary entry."""
        runner = Runner(net, mode, samples=self.samples, generator=gen)
        ps, ys, mean_ent = [], [], []
        for batch in batches:
            probs, ent = self._predict(runner, batch)
            p, y = scored_positions(probs, batch)
            ps.append(p)
            ys.append(y)
            if ent is not None:
                mean_ent.append(scored_positions(ent[..., None], batch)[0][:, 0])
        p, y = torch.cat(ps), torch.cat(ys).long()
        conf, pred = p.max(-1)
        correct = (pred == y).double()
        ece, table = expected_calibration_error(conf, correct, self.bins)
        metrics = {
            "accuracy": float(correct.mean()),
            "nll": float(-torch.log(p.gather(1, y[:, None]).clamp_min(1e-12)).mean()),
            "ece": ece,
            "entropy": float(entropy(p).mean()),
        }
        if mean_ent:
            metrics["mutual_information"] = float((entropy(p) - torch.cat(mean_ent)).mean())
        sc = mode_scaling(net, mode)
        for q, v in metrics.items():
            rows.append(dict(mode=mode, scaling=sc, quantity=q, value=v, count=len(y)))
        for r in table:
            for q in ("confidence", "accuracy", "fraction"):
                rows.append(dict(mode=mode, scaling=sc, quantity=f"reliability_{q}",
                                 bin=r["bin"], value=r[q], count=len(y)))
        summary["modes"][mode] = metrics
