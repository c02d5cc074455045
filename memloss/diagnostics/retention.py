"""``retention``: how much of the input from k steps back a linear read-out recovers from h_t.

For every lag ``k = 0..max_lag`` a closed-form ridge regression maps the last layer's
``h_t`` to the input ``u_{t-k}`` (one-hot token for token input, the feature vector for
float input). It is fitted on half of the sequences and scored on the other half: the
``capacity`` at lag k is the mean over target dimensions of the squared correlation between
prediction and truth (Jaeger's memory capacity; the sum over k is the summary's
``memory_capacity``). For categorical inputs (token ids, or one-hot float features) the
``accuracy`` of the arg-max decode is reported too, next to ``chance`` (the majority class).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from memloss.core import validate
from memloss.models import Net

from .base import PROBES, Probe, ProbeResult, Quantity, checked, make_frame
from .data import modes_field, probe_context, split_field
from memloss.models.inference import DETERMINISTIC, OTHER_SCALING, TRAIN_MODE, mode_masks, \
    mode_scaling
from .unroll import unroll

__all__ = ["Retention", "ridge_fit", "squared_correlation", "input_targets"]


def ridge_fit(X: Tensor, Y: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Closed-form ridge regression with an intercept: returns ``(W, b)`` with
    ``Y ~ X W + b``; the penalty is ``alpha`` times the mean eigenvalue of the centred
    ``X^T X`` (scale free)."""
    X, Y = X.double(), Y.double()
    mx, my = X.mean(0), Y.mean(0)
    Xc, Yc = X - mx, Y - my
    G = Xc.T @ Xc
    lam = alpha * (torch.trace(G) / G.shape[0]).clamp_min(1e-12)
    W = torch.linalg.solve(G + lam * torch.eye(G.shape[0], dtype=G.dtype, device=G.device), Xc.T @ Yc)
    return W, my - mx @ W


def squared_correlation(pred: Tensor, y: Tensor) -> Tensor:
    """Squared Pearson correlation per column, NaN where a column is constant."""
    pc, yc = pred - pred.mean(0), y - y.mean(0)
    den = pc.norm(dim=0) * yc.norm(dim=0)
    r = (pc * yc).sum(0) / den
    return torch.where(den > 1e-12, r * r, torch.full_like(r, float("nan")))


def input_targets(net: Net, inputs: Tensor) -> tuple[Tensor, Tensor | None]:
    """The decoding targets ``[B, T, D]`` and, for categorical input, class ids ``[B, T]``."""
    if net.embedding is not None:
        return F.one_hot(inputs, net.embedding.num_embeddings).double(), inputs
    x = inputs.double()
    onehot = bool(((x == 0) | (x == 1)).all()) and bool((x.sum(-1) == 1).all())
    return x, (x.argmax(-1) if onehot else None)


def _layer_index(owner: str, name: str, value: Any) -> None:
    """A layer index, negative ones counting from the top (checked against the net later)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{owner}: {name} must be an integer, got {validate.shown(value)}")


@PROBES.register("retention", "ridge probes decoding the input from k steps back out of h_t; "
                 "memory-capacity curve over k")
@dataclass(frozen=True)
class Retention(Probe):
    """Args: ``max_lag`` largest k (capped at T-1); ``alpha`` relative ridge penalty;
    ``batch_size`` sequences (half fit, half score); ``layer`` whose h is read."""

    name: ClassVar[str] = "retention"
    title: ClassVar[str] = "What the state still holds about past inputs"
    rank: ClassVar[int] = 50
    quantities: ClassVar[dict[str, Quantity]] = {
        "capacity": Quantity("linear memory of the input k steps back", "squared correlation"),
        "memory_capacity": Quantity("memory capacity (sum over lags)", "squared correlation"),
        "accuracy": Quantity("arg-max decode of the input k steps back", "fraction correct"),
        "chance": Quantity("majority-class rate", "fraction"),
    }
    max_lag: int = checked(20, validate.integer, minimum=0)
    alpha: float = checked(1e-3, validate.number, 0.0, low_open=True)
    batch_size: int = checked(256, validate.integer, minimum=4)
    split: str = checked("test", split_field)
    layer: int = checked(-1, _layer_index)
    modes: tuple[str, ...] = checked((DETERMINISTIC, TRAIN_MODE), modes_field, DETERMINISTIC,
                                     OTHER_SCALING, TRAIN_MODE)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        return {"max_lag": 3, "batch_size": 16}

    @torch.no_grad()
    def __call__(self, net: Net, task: Any, *, generator: torch.Generator | None = None
                 ) -> ProbeResult:
        L = net.config.num_layers
        if not -L <= self.layer < L:
            raise ValueError(f"{self.name}: layer={self.layer} but the net has {L} layer(s)")
        layer = self.layer % L
        gen, device, view, batch = probe_context(net, task, self.split, self.batch_size, generator,
                                                 self.name)
        B, T = batch.inputs.shape[:2]
        if B < 4:
            raise ValueError(f"{self.name}: needs at least 4 sequences (got {B}); raise batch_size "
                             "or use a split with more data")
        Y, classes = input_targets(net, batch.inputs)
        fit, score = slice(0, B // 2), slice(B // 2, B)
        rows: list[dict[str, Any]] = []
        summary: dict[str, Any] = {"memory_capacity": {}, "layer": layer, "length": T,
                                   "categorical": classes is not None}
        for mode in self.modes:
            masks = mode_masks(net, mode, T, B, generator=gen, device=device)
            h = unroll(view, batch.inputs, masks).stacked()["h"][:, layer].transpose(0, 1)  # [B,T,H]
            sc = mode_scaling(net, mode)
            total = 0.0
            for k in range(min(self.max_lag, T - 1) + 1):
                Xf, Yf = h[fit, k:].reshape(-1, h.shape[-1]), Y[fit, :T - k].reshape(-1, Y.shape[-1])
                Xs, Ys = h[score, k:].reshape(-1, h.shape[-1]), Y[score, :T - k].reshape(-1, Y.shape[-1])
                W, b = ridge_fit(Xf, Yf, self.alpha)
                pred = Xs.double() @ W + b
                r2 = squared_correlation(pred, Ys)
                cap = float(torch.nanmean(r2)) if bool(torch.isfinite(r2).any()) else float("nan")
                total += cap if cap == cap else 0.0
                base = dict(mode=mode, scaling=sc, layer=layer, lag=k)
                rows.append(dict(base, quantity="capacity", value=cap))
                if classes is not None:
                    cs = classes[score, :T - k].reshape(-1)
                    acc = float((pred.argmax(-1) == cs).double().mean())
                    chance = float(torch.bincount(cs).max() / cs.numel())
                    rows.append(dict(base, quantity="accuracy", value=acc))
                    rows.append(dict(base, quantity="chance", value=chance))
            summary["memory_capacity"][mode] = total
            rows.append(dict(mode=mode, scaling=sc, layer=layer, quantity="memory_capacity",
                             value=total))
        frame = make_frame(self.name, net, rows, extra_columns=("lag",))
        frame["lag"] = frame["lag"].astype("Int64")
        return ProbeResult(frame, summary)
