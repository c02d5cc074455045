"""Probes on any trained recurrent model: one entry point, :func:`probe`.

What it takes (``model``):

* a memloss run directory (a path): its net and task are loaded (:func:`memloss.runs.load_run`)
  and the results go to ``RUN/diagnostics`` unless ``out_dir`` says otherwise;
* a memloss :class:`~memloss.models.Net` in memory, with ``data``;
* a user's ``torch.nn.LSTM``/``GRU``/``RNN`` (or a memloss ``Recurrent``), with its
  ``embedding`` and ``head`` if it has them, the ``scheme`` it was trained with and ``data``.

``data`` is a memloss task (``make_task("ptb-word", ...)``), a
:class:`~memloss.diagnostics.external.TensorTask`, or the user's own tensors as a tuple
``(inputs, targets)`` or ``(inputs, targets, weights)`` (batch first).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from torch import Tensor, nn

from memloss.diagnostics import ProbeResult, run_probes
from memloss.diagnostics.external import TensorTask, net_from_torch
from memloss.models import Net
from memloss.tasks import Task

__all__ = ["probe", "as_task"]


def as_task(data: Any) -> Task:
    """A task from ``data``: a task as it is, or a tuple of tensors made a
    :class:`~memloss.diagnostics.external.TensorTask` (float targets: regression)."""
    if isinstance(data, Task) or (hasattr(data, "batches") and hasattr(data, "score")):
        return data  # type: ignore[return-value]
    if isinstance(data, (tuple, list)) and len(data) in (2, 3) and \
            all(isinstance(t, Tensor) or t is None for t in data):
        inputs, targets = data[0], data[1]
        weights = data[2] if len(data) == 3 else None
        return TensorTask(inputs, targets, weights, regression=targets.is_floating_point())
    raise ValueError(f"data must be a memloss task or a tuple (inputs, targets[, weights]) of "
                     f"tensors, got {type(data).__name__}")


def probe(model: "str | os.PathLike[str] | Net | nn.Module", data: Any = None,
          names: Sequence[str] | None = None, *, embedding: "nn.Module | Tensor | None" = None,
          head: nn.Module | None = None, scheme: Any = "none",
          out_dir: "str | os.PathLike[str] | None" = None,
          params: Mapping[str, Mapping[str, Any]] | None = None, seed: int = 0,
          device: str = "cpu", weights: str = "final") -> dict[str, ProbeResult]:
    """Run probes (``names``, default all; see ``memloss ls probes``) on a trained model and
    return ``{probe: ProbeResult}``; the frames and summaries are also written to ``out_dir``
    when given (a run directory's own ``diagnostics/`` by default).

    ``params`` overrides probe parameters by probe name, ``seed`` seeds the probes' mask
    generators. ``embedding``, ``head`` and ``scheme`` describe a torch.nn model (and are
    rejected for the other kinds); ``device`` and ``weights`` apply to run directories."""
    if isinstance(model, (str, os.PathLike)):
        from memloss.runs import load_run, probe_run, probe_source

        if embedding is not None or head is not None or scheme != "none":
            raise ValueError("embedding, head and scheme describe a torch.nn model; a run "
                             "directory records its own")
        if data is None:  # the run's own task: under its lock, the checkpoint recorded
            return probe_run(model, names, out_dir, params=params, seed=seed, device=device,
                             weights=weights)
        run = load_run(model, weights=weights, device=device)
        target = Path(out_dir) if out_dir is not None else Path(model) / "diagnostics"
        return run_probes(run.net, as_task(data), names, target, params=params, seed=seed,
                          source=probe_source(run))
    if data is None:
        raise ValueError("probing a model in memory needs data: a memloss task or a tuple "
                         "(inputs, targets[, weights]) of tensors")
    if isinstance(model, Net):
        if embedding is not None or head is not None or scheme != "none":
            raise ValueError("a memloss Net has its own embedding, head and scheme; pass "
                             "embedding/head/scheme only with a torch.nn recurrent module")
        net = model
    elif isinstance(model, nn.Module):
        net = net_from_torch(model, embedding=embedding, head=head, scheme=scheme)
    else:
        raise ValueError(f"model must be a run directory, a memloss Net or a torch.nn "
                         f"LSTM/GRU/RNN, got {type(model).__name__}")
    return run_probes(net, as_task(data), names, out_dir, params=params, seed=seed)
