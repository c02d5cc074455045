"""Batching and scoring helpers shared by the real-data tasks."""
from __future__ import annotations

import logging
import math
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from memloss.core import validate
from ..base import SPLITS, Batch

__all__ = ["check_split", "check_batch_size", "order", "pad", "stream_batches", "slice_batches",
           "class_sums", "class_metrics", "token_nll_sums", "lm_metrics", "masked_cross_entropy"]

log = logging.getLogger(__name__)
_TINY = torch.finfo(torch.float32).tiny


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")


def check_batch_size(batch_size: int) -> None:
    validate.integer("batches", "batch_size", batch_size)


def order(n: int, shuffle: bool, generator: torch.Generator | None) -> Tensor:
    """Indices 0..n-1, shuffled with ``generator`` when ``shuffle`` and a generator is given."""
    if shuffle and generator is not None:
        return torch.randperm(n, generator=generator)
    return torch.arange(n)


def pad(seqs: Sequence[Tensor], value: float | int, *, left: bool = False) -> Tensor:
    """Stack 1-d (or ``[L, F]``) tensors of different lengths into ``[B, Lmax, ...]``, padding
    with ``value`` on the right (or on the left, so that the last step is real data)."""
    n = max(len(s) for s in seqs)
    out = seqs[0].new_full((len(seqs), n) + tuple(seqs[0].shape[1:]), value)
    for i, s in enumerate(seqs):
        if len(s):
            if left:
                out[i, n - len(s):] = s
            else:
                out[i, :len(s)] = s
    return out


def stream_batches(data: Tensor, batch_size: int, bptt: int) -> Iterator[Batch]:
    """Zaremba et al.'s batching: the token stream is cut into ``batch_size`` contiguous
    columns, read in segments of ``bptt`` steps; targets are the next token at every step and
    each batch continues the previous one (``carry=True``). The last segment may be shorter;
    the few tokens that do not fill a column are dropped."""
    if len(data) < 2:
        raise ValueError(f"{len(data)} token(s) are too few for a stream")
    if batch_size > len(data) - 1:  # e.g. a large evaluation batch on a tiny split
        log.warning("%d tokens give at most %d stream columns; using %d instead of %d",
                    len(data), len(data) - 1, len(data) - 1, batch_size)
        batch_size = len(data) - 1
    cols = (len(data) - 1) // batch_size
    x = data[: batch_size * cols].view(batch_size, cols)
    y = data[1: batch_size * cols + 1].view(batch_size, cols)
    for i in range(0, cols, bptt):
        yield Batch(x[:, i:i + bptt], y[:, i:i + bptt], carry=True)


def slice_batches(data: Tensor, batch_size: int, bptt: int, *, shuffle: bool,
                  generator: torch.Generator | None) -> Iterator[Batch]:
    """Non-overlapping slices of ``bptt`` inputs (targets shifted by one), no state carried
    between batches (Krueger et al.; Semeniuta et al. char level). The tail that does not fill
    a slice is dropped; the last batch may be smaller."""
    n = (len(data) - 1) // bptt
    if n < 1:
        raise ValueError(f"{len(data)} tokens are too few for one slice of {bptt} steps")
    x = data[: n * bptt].view(n, bptt)
    y = data[1: n * bptt + 1].view(n, bptt)
    idx = order(n, shuffle, generator)
    for i in range(0, n, batch_size):
        j = idx[i:i + batch_size]
        yield Batch(x[j], y[j], carry=False)


def masked_cross_entropy(output: Tensor, targets: Tensor, weights: Tensor | None, *,
                         reduction: str = "token") -> Tensor:
    """Cross-entropy of per-step targets ``[B, T]`` from logits ``[B, T, C]``.

    ``reduction="token"``: mean over counted steps. ``"sequence"``: summed over time and
    averaged over the batch (the scale of Zaremba et al.'s code, which its learning rate of 1
    assumes)."""
    if output.shape[:2] != targets.shape:
        raise ValueError(f"output {tuple(output.shape)} does not match targets "
                         f"{tuple(targets.shape)}")
    nll = F.cross_entropy(output.reshape(-1, output.shape[-1]), targets.reshape(-1),
                          reduction="none").view_as(targets)
    w = torch.ones_like(nll) if weights is None else weights.to(nll.dtype)
    total = (nll * w).sum()
    if reduction == "token":
        return total / w.sum().clamp_min(1.0)
    if reduction == "sequence":
        return total / targets.shape[0]
    raise ValueError(f"unknown reduction {reduction!r}; valid: token, sequence")


def token_nll_sums(probs: Tensor, targets: Tensor, weights: Tensor | None) -> dict[str, float]:
    """Summed negative log-likelihood (nats) and count of the counted per-step targets."""
    p = probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).clamp_min(_TINY)
    w = torch.ones_like(p) if weights is None else weights.to(p.dtype)
    correct = (probs.argmax(-1) == targets).to(p.dtype)
    return {"nll": float(-(p.log() * w).sum()), "count": float(w.sum()),
            "correct": float((correct * w).sum())}


def lm_metrics(sums: dict[str, float], unit: str) -> dict[str, float]:
    """``loss`` (mean NLL, nats), ``accuracy``, and ``perplexity`` (unit "word") or ``bpc``
    (unit "char": NLL / ln 2)."""
    count = sums.get("count", 0.0)
    if count <= 0:
        raise ValueError("no scored tokens: the split produced no batches")
    loss = sums["nll"] / count
    out = {"loss": loss, "accuracy": sums.get("correct", 0.0) / count}
    if unit == "word":
        out["perplexity"] = math.exp(loss) if loss < 700 else math.inf
    else:
        out["bpc"] = loss / math.log(2)
    return out


def class_sums(probs: Tensor, targets: Tensor) -> dict[str, float]:
    """Correct / nll / count sums of one label per sequence, read from the last step."""
    p = probs[:, -1] if probs.dim() == 3 else probs
    pt = p.gather(-1, targets.view(-1, 1)).squeeze(-1).clamp_min(_TINY)
    return {"correct": float((p.argmax(-1) == targets).sum()), "nll": float(-pt.log().sum()),
            "count": float(targets.numel())}


def class_metrics(sums: dict[str, float]) -> dict[str, float]:
    count = sums.get("count", 0.0)
    if count <= 0:
        raise ValueError("no scored examples: the split produced no batches")
    acc = sums["correct"] / count
    return {"accuracy": acc, "error": 1.0 - acc, "loss": sums["nll"] / count}
