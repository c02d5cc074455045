"""Probing recurrent models trained outside memloss.

:func:`net_from_torch` turns a ``torch.nn.LSTM``/``GRU``/``RNN`` (or a memloss
:class:`~memloss.models.Recurrent`), its embedding and its head into a memloss
:class:`~memloss.models.Net` with the same weights, under the regularization scheme the
model was trained with (a memloss scheme description such as ``"zaremba:p=0.5"``: the
scheme fixes where the probes put masks and what deterministic inference multiplies by).
:func:`net_from_weights` does the same from tensors in torch.nn's names, for state dicts.
:class:`TensorTask` makes a task of the user's own tensors. With both, every probe runs
on a model that was never a memloss run.

The converted net computes ``head(rnn(embedding(x)))`` at every step: whatever else the
original model's ``forward`` does between these (layer norm, a projection, an attention
over the states) is not part of it; compare the outputs once (:func:`max_output_gap`).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from memloss.models import Net, NetConfig, Recurrent, get_cell, parse_scheme
from memloss.models.cells import native_cells
from memloss.tasks import Batch, Task
from memloss.tasks.data.batching import class_metrics, class_sums, lm_metrics, \
    masked_cross_entropy, token_nll_sums

__all__ = ["net_from_torch", "net_from_weights", "TensorTask", "max_output_gap", "torch_cell"]

log = logging.getLogger(__name__)



def torch_cell(module: nn.Module) -> str | None:
    """The memloss cell a ``torch.nn`` recurrent module runs (from ``CellSpec.native``), or
    None for any other module."""
    return next((spec.name for native, spec in native_cells().items()
                 if isinstance(module, getattr(nn, native))), None)
_LAYER_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)$")


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(int(s) for s in t.shape)


def _layers(recurrent: Mapping[str, Tensor]) -> int:
    """The number of layers of torch.nn-named recurrent weights; rejects what memloss's
    recurrence does not have (reverse directions, LSTM projections)."""
    bad = sorted(k for k in recurrent if k.endswith("_reverse") or k.startswith("weight_hr"))
    if bad:
        what = "a bidirectional" if bad[0].endswith("_reverse") else "a projected (proj_size)"
        raise ValueError(f"{what} recurrent layer ({bad[0]}) is not a model memloss can "
                         "probe: its recurrence runs one direction without a projection")
    unknown = sorted(k for k in recurrent if not _LAYER_KEY.match(k))
    if unknown:
        raise ValueError(f"unexpected recurrent weight {unknown[0]!r}; expected torch.nn names "
                         "weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ...")
    layers = sorted({int(m.group(2)) for k in recurrent if (m := _LAYER_KEY.match(k))})
    if not layers or layers != list(range(len(layers))):
        raise ValueError(f"recurrent weights of layers {layers} given; expected layers 0..L-1 "
                         "with weight_ih_l0 and weight_hh_l0 at least")
    for k in range(len(layers)):
        for name in ("weight_ih", "weight_hh"):
            if f"{name}_l{k}" not in recurrent:
                raise ValueError(f"recurrent weights lack {name}_l{k}")
    return len(layers)


def net_from_weights(cell: str, recurrent: Mapping[str, Tensor], *,
                     embedding: Tensor | None = None, head_weight: Tensor | None = None,
                     head_bias: Tensor | None = None, scheme: Any = "none",
                     nonlinearity: str = "tanh", path: str = "auto") -> Net:
    """A memloss Net holding the given weights (copies), sizes read from them.

    ``recurrent``: ``weight_ih_l{k}``, ``weight_hh_l{k}`` and optionally ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` as ``torch.nn.LSTM/GRU/RNN`` name and lay them out (gate order i, f, g,
    o / r, z, n); missing biases are zeros (``bias=False``). ``embedding``: ``[V, E]`` for
    token-id input (else float input of ``weight_ih_l0``'s width). ``head_weight``/
    ``head_bias``: a linear read-out ``[C, H]``/``[C]`` at every step (none: the net outputs
    its last layer's h). ``scheme``: the regularization the model was trained with. The net
    takes the weights' dtype and device.
    """
    spec = get_cell(cell)
    L = _layers(recurrent)
    w_hh = recurrent["weight_hh_l0"]
    H = int(w_hh.shape[1])
    if _shape(w_hh) != (spec.num_gates * H, H):
        raise ValueError(f"weight_hh_l0 has shape {_shape(w_hh)}; a {cell} cell of hidden size "
                         f"{H} has ({spec.num_gates * H}, {H}) ({spec.num_gates} gate blocks). Is the "
                         "cell right?")
    I = int(recurrent["weight_ih_l0"].shape[1])
    sizes: dict[str, Any] = {}
    if embedding is not None:
        if embedding.dim() != 2 or int(embedding.shape[1]) != I:
            raise ValueError(f"the embedding has shape {_shape(embedding)}; the recurrent layer "
                             f"takes {I} features, so it must be [vocab, {I}]")
        sizes.update(vocab_size=int(embedding.shape[0]), embedding_dim=I)
    else:
        sizes["input_size"] = I
    if head_weight is not None:
        if head_weight.dim() != 2 or int(head_weight.shape[1]) != H:
            raise ValueError(f"the head weight has shape {_shape(head_weight)}; it reads the "
                             f"hidden state of size {H}, so it must be [classes, {H}]")
        sizes["output_size"] = int(head_weight.shape[0])
    elif head_bias is not None:
        raise ValueError("a head bias without a head weight; give both or neither")
    config = NetConfig(cell=cell, hidden_size=H, num_layers=L, scheme=parse_scheme(scheme),
                       nonlinearity=nonlinearity, path=path, **sizes)
    net = Net(config)
    state = _state(net, recurrent, L, embedding, head_weight, head_bias)
    ref = recurrent["weight_hh_l0"]
    net.to(dtype=ref.dtype, device=ref.device)
    net.load_state_dict({k: v.to(dtype=ref.dtype, device=ref.device) for k, v in state.items()})
    return net.eval()


def _state(net: Net, recurrent: Mapping[str, Tensor], layers: int, embedding: Tensor | None,
           head_weight: Tensor | None, head_bias: Tensor | None) -> dict[str, Tensor]:
    """The net's state dict filled from the given tensors (shapes checked against it)."""
    want = net.state_dict()
    state: dict[str, Tensor] = {}
    for k in range(layers):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            key = f"{name}_l{k}"
            target = f"rnn.{key}"
            value = recurrent.get(key)
            state[target] = torch.zeros_like(want[target]) if value is None else value.detach()
    if embedding is not None:
        state["embedding.weight"] = embedding.detach()
    if head_weight is not None:
        state["head.weight"] = head_weight.detach()
        state["head.bias"] = (torch.zeros_like(want["head.bias"]) if head_bias is None
                              else head_bias.detach())
    for key, value in state.items():
        if _shape(value) != _shape(want[key]):
            raise ValueError(f"{key} has shape {_shape(value)}, expected {_shape(want[key])} for "
                             f"a {net.config.cell} net of hidden size {net.config.hidden_size}")
    return state


def net_from_torch(rnn: nn.Module, *, embedding: nn.Module | Tensor | None = None,
                   head: nn.Module | None = None, scheme: Any = "none", path: str = "auto"
                   ) -> Net:
    """A memloss Net with the weights of a user's ``torch.nn.LSTM``/``GRU``/``RNN`` (or a memloss
    :class:`~memloss.models.Recurrent`), its ``embedding`` (an ``nn.Embedding`` or its weight)
    and its ``head`` (an ``nn.Linear`` applied to the last layer's h at every step), run
    under ``scheme``, the regularization the model was trained with, e.g.
    ``"torch-dropout:p=0.5"`` for the ``dropout=0.5`` of a ``torch.nn.LSTM`` (a new mask
    every step on each layer's output but the last's, exactly torch's), ``"zaremba:p=0.5"``
    for dropout on every layer's input and the last layer's output, or ``"none"``. The
    weights are copied; the original module is not changed."""
    if isinstance(rnn, Recurrent):
        cell, nonlinearity = rnn.cell.name, rnn.nonlinearity
    else:
        cell = torch_cell(rnn)
        if cell is None:
            names = ", ".join(f"torch.nn.{n}" for n in native_cells())
            raise ValueError(f"net_from_torch takes one of {names} (or a memloss Recurrent), got "
                             f"{type(rnn).__name__}")
        if getattr(rnn, "bidirectional", False) or getattr(rnn, "proj_size", 0):
            raise ValueError(f"a bidirectional or projected {type(rnn).__name__} is not a model "
                             "memloss can probe: its recurrence runs one direction without a "
                             "projection")
        nonlinearity = getattr(rnn, "nonlinearity", "tanh")
        if getattr(rnn, "dropout", 0.0) and getattr(rnn, "num_layers", 1) > 1 and \
                "between" not in parse_scheme(scheme).sites(get_cell(cell)):
            log.warning("%s was trained with dropout=%s between its layers, but scheme %r has no "
                        "mask there; add torch-dropout:p=%s to the scheme (that dropout exactly, "
                        "e.g. scheme='torch-dropout:p=%s') or the probes measure a model "
                        "without it", type(rnn).__name__, rnn.dropout, str(scheme), rnn.dropout,
                        rnn.dropout)
    weights = {k: v for k, v in rnn.state_dict().items()}
    emb = embedding.weight if isinstance(embedding, nn.Embedding) else embedding
    if emb is not None and not isinstance(emb, Tensor):
        raise ValueError(f"embedding must be a torch.nn.Embedding or its weight tensor, got "
                         f"{type(embedding).__name__}")
    if head is not None and not isinstance(head, nn.Linear):
        raise ValueError(f"head must be a torch.nn.Linear (applied to the last layer's h at "
                         f"every step), got {type(head).__name__}")
    return net_from_weights(cell, weights, embedding=emb,
                            head_weight=None if head is None else head.weight,
                            head_bias=None if head is None or head.bias is None else head.bias,
                            scheme=scheme, nonlinearity=nonlinearity, path=path)


@torch.no_grad()
def max_output_gap(net: Net, forward: Callable[[Tensor], Tensor], inputs: Tensor) -> float:
    """Largest absolute difference between the converted net's deterministic outputs
    ``[B, T, C]`` and ``forward(inputs)`` (the original model in eval mode, batch first):
    0 up to rounding when the conversion holds everything the model computes."""
    was = net.training
    net.eval()
    try:
        ours = net(inputs)[0]
    finally:
        net.train(was)
    theirs = forward(inputs)
    if _shape(theirs) != _shape(ours):
        raise ValueError(f"the original forward returned shape {_shape(theirs)}, the converted "
                         f"net {_shape(ours)}; pass a function returning [B, T, C] outputs")
    return float((ours - theirs.to(ours)).abs().max())


@dataclass(frozen=True, eq=False)
class TensorTask(Task):
    """A task made of the user's own tensors, for probing.

    ``inputs``: ``[B, T]`` token ids or ``[B, T, F]`` floats, batch first. ``targets``:
    ``[B]`` (one class or value per sequence, predicted at the last step) or ``[B, T]``
    (one per step). ``weights``: ``[B, T]``, 1 where a per-step target counts.
    ``regression``: targets are values (mean squared error) instead of classes.
    ``bptt``: the rows are the columns of one stream (Zaremba's batching): the probes read
    them ``bptt`` steps at a time with the state carried, and ``batch_size`` is ignored.
    Every split is these tensors.
    """

    name: ClassVar[str] = "tensors"
    inputs: Tensor
    targets: Tensor
    weights: Tensor | None = None
    regression: bool = False  # type: ignore[misc]
    bptt: int | None = None

    def __post_init__(self) -> None:
        x, y = self.inputs, self.targets
        if not isinstance(x, Tensor) or x.dim() not in (2, 3) or x.shape[0] == 0:
            raise ValueError(f"TensorTask inputs must be [B, T] token ids or [B, T, F] floats, "
                             f"got {type(x).__name__} {_shape(x) if isinstance(x, Tensor) else ''}")
        if x.dim() == 2 and x.is_floating_point():
            raise ValueError("TensorTask inputs of shape [B, T] must be integer token ids; float "
                             "features are [B, T, F]")
        if not isinstance(y, Tensor) or y.dim() not in (1, 2) or y.shape[0] != x.shape[0] or \
                (y.dim() == 2 and y.shape[1] != x.shape[1]):
            raise ValueError(f"TensorTask targets must be [B] or [B, T] for inputs "
                             f"{_shape(x)}, got {_shape(y) if isinstance(y, Tensor) else y!r}")
        if self.regression != y.is_floating_point():
            raise ValueError("TensorTask: class targets are integers and regression targets "
                             f"floats; got {y.dtype} targets with regression={self.regression}")
        if self.weights is not None and _shape(self.weights) != _shape(y):
            raise ValueError(f"TensorTask weights must be shaped like per-step targets "
                             f"{_shape(y)}, got {_shape(self.weights)}")
        if self.bptt is not None:
            if not isinstance(self.bptt, int) or self.bptt < 1:
                raise ValueError(f"TensorTask bptt must be a positive integer, got {self.bptt!r}")
            if y.dim() != 2:
                raise ValueError("TensorTask bptt (a stream) needs per-step targets [B, T]")

    @property  # type: ignore[override]
    def target(self) -> str:
        return "last" if self.targets.dim() == 1 else "every"

    @property  # type: ignore[override]
    def metric(self) -> str:
        return "mse" if self.regression else "accuracy"

    @property  # type: ignore[override]
    def lower_is_better(self) -> bool:
        return self.regression

    def net_kwargs(self) -> dict:
        x, y = self.inputs, self.targets
        size = {"input_size": int(x.shape[-1])} if x.dim() == 3 else \
            {"vocab_size": int(x.max()) + 1}
        size["output_size"] = 1 if self.regression else int(y.max()) + 1
        return size

    def batches(self, split: str, batch_size: int, *, generator: torch.Generator | None = None
                ) -> Iterator[Batch]:
        x, y, w = self.inputs, self.targets, self.weights
        if self.bptt is not None:
            for i in range(0, x.shape[1], self.bptt):
                s = slice(i, i + self.bptt)
                yield Batch(x[:, s], y[:, s], None if w is None else w[:, s], carry=True)
            return
        for i in range(0, x.shape[0], batch_size):
            s = slice(i, i + batch_size)
            yield Batch(x[s], y[s], None if w is None else w[s])

    def loss(self, output: Tensor, batch: Batch) -> Tensor:
        y = batch.targets
        if self.regression:
            pred = output[:, -1, 0] if y.dim() == 1 else output[..., 0]
            err = (pred - y) ** 2
            if batch.weights is not None:
                return (err * batch.weights).sum() / batch.weights.sum().clamp_min(1.0)
            return err.mean()
        if y.dim() == 1:
            return F.cross_entropy(output[:, -1], y)
        return masked_cross_entropy(output, y, batch.weights)

    def score(self, probs: Tensor, batch: Batch) -> dict[str, float]:
        y = batch.targets
        if self.regression:
            pred = probs[:, -1, 0] if y.dim() == 1 else probs[..., 0]
            w = torch.ones_like(pred) if batch.weights is None else batch.weights.to(pred)
            return {"se": float((((pred - y) ** 2) * w).sum()), "count": float(w.sum())}
        if y.dim() == 1:
            return class_sums(probs, y)
        return token_nll_sums(probs, y, batch.weights)

    def finalize(self, sums: dict[str, float]) -> dict[str, float]:
        if self.regression:
            return {"mse": sums["se"] / max(sums["count"], 1.0)}
        if self.targets.dim() == 1:
            return class_metrics(sums)
        return lm_metrics(sums, "word")
