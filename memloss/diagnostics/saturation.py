"""``saturation``: how often each gate is saturated, per unit (Karpathy et al. 2015).

The gate values are the ones the cell's step computes: the probe runs the net's layers on
the reference loop with a recorder (:func:`~memloss.diagnostics.unroll.record_activations`)
under deterministic inference (masks replaced by their expectations) and reads what the
cell declares (``CellSpec.activations``): every gate (a sigmoid, in [0, 1]), named by its
label (LSTM ``input``, ``forget``, ``output``; GRU ``reset``, ``update``). A cell with no
gate has its bounded activations judged instead, mapped onto [0, 1] from their range (a
tanh RNN's ``activation`` h as ``(h + 1) / 2``); a cell with neither (a relu RNN) is refused
with one line. A unit is left-saturated at a step when the gate is below ``low`` (0.1) and
right-saturated above ``high`` (0.9). The distribution of every gate is a histogram in
long format (``bin`` = bin centre, value = fraction). The summary names the gate that
keeps the cell's memory (``CellSpec.memory``: the LSTM's forget gate, the GRU's update gate
in torch's form ``h_t = (1 - z) n + z h_{t-1}``) and its mean in the last layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from memloss.core import validate
from memloss.models import Masks, Net
from memloss.models.cells import Activation, CellSpec

from .base import PROBES, NotApplicable, Probe, ProbeResult, Quantity, checked, make_frame
from .data import modes_field, probe_context, split_field
from memloss.models.inference import DETERMINISTIC, OTHER_SCALING, mode_masks, mode_scaling
from .unroll import record_activations

__all__ = ["Saturation", "gate_activations", "judged_activations"]


def judged_activations(cell: CellSpec, nonlinearity: str, owner: str = "saturation"
                       ) -> tuple[Activation, ...]:
    """The activations a saturation measure judges: the cell's gates, or, for a cell with
    none, its bounded activations. Refuses (:class:`NotApplicable`) a cell with neither."""
    gates = cell.gate_activations
    if gates:
        return gates
    bounded = tuple(a for a in cell.activations if a.bounds(nonlinearity) is not None)
    if not bounded:
        raise NotApplicable(f"{owner}: a {cell.name} cell with {nonlinearity} declares neither a "
                            "gate nor a bounded activation (CellSpec.activations); run this probe "
                            "on a gated cell or a tanh RNN")
    return bounded


def gate_activations(net: Net, inputs: Tensor, masks: Masks) -> list[dict[str, Tensor]]:
    """Per layer, ``{label: [T, B, H]}`` of every judged activation (:func:`judged_activations`)
    as the step computed it under ``masks``, mapped onto [0, 1] from its range."""
    cell, nl = net.rnn.cell, net.rnn.nonlinearity
    judged = judged_activations(cell, nl)
    out = []
    for recorded in record_activations(net, inputs, masks):
        layer = {}
        for a in judged:
            lo, hi = a.bounds(nl)  # type: ignore[misc]
            v = recorded[a.name]
            layer[a.label] = v if (lo, hi) == (0.0, 1.0) else (v - lo) / (hi - lo)
        out.append(layer)
    return out


@PROBES.register("saturation", "fraction of time each gate is left- (<0.1) or right-saturated "
                 "(>0.9) per unit (Karpathy 2015); gate-value histograms")
@dataclass(frozen=True)
class Saturation(Probe):
    """Args: ``low``/``high`` saturation thresholds; ``bins`` histogram bins on [0, 1]."""

    name: ClassVar[str] = "saturation"
    title: ClassVar[str] = "Gate saturation"
    rank: ClassVar[int] = 70
    quantities: ClassVar[dict[str, Quantity]] = {
        "left_saturated": Quantity("fraction of gate values below the low threshold", "fraction"),
        "right_saturated": Quantity("fraction of gate values above the high threshold",
                                    "fraction"),
        "gate_histogram": Quantity("share of gate activations", "fraction of activations"),
    }
    low: float = checked(0.1, validate.number, 0.0, 1.0, low_open=True, high_open=True)
    high: float = checked(0.9, validate.number, 0.0, 1.0, low_open=True, high_open=True)
    bins: int = checked(20, validate.integer)
    batch_size: int = checked(64, validate.integer)
    split: str = checked("test", split_field)
    modes: tuple[str, ...] = checked((DETERMINISTIC,), modes_field, DETERMINISTIC, OTHER_SCALING)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        return {"batch_size": 8}

    def check(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"{self.name}: need 0 < low < high < 1, got low={self.low!r}, "
                             f"high={self.high!r}")

    @torch.no_grad()
    def __call__(self, net: Net, task: Any, *, generator: torch.Generator | None = None
                 ) -> ProbeResult:
        judged_activations(net.rnn.cell, net.rnn.nonlinearity, self.name)  # refuses early
        gen, device, view, batch = probe_context(net, task, self.split, self.batch_size, generator,
                                                 self.name)
        B, T = batch.inputs.shape[:2]
        rows: list[dict[str, Any]] = []
        summary: dict[str, Any] = {"low": self.low, "high": self.high, "modes": {}}
        edges = torch.linspace(0, 1, self.bins + 1)
        centers = ((edges[:-1] + edges[1:]) / 2).tolist()
        for mode in self.modes:
            masks = mode_masks(net, mode, T, B, generator=gen, device=device)
            sc = mode_scaling(net, mode)
            per_mode: dict[str, Any] = {}
            for layer, gates in enumerate(gate_activations(view, batch.inputs, masks)):
                for gate, a in gates.items():
                    left = (a < self.low).float().mean(dim=(0, 1)).cpu()
                    right = (a > self.high).float().mean(dim=(0, 1)).cpu()
                    for unit in range(a.shape[-1]):
                        for q, v in (("left_saturated", left), ("right_saturated", right)):
                            rows.append(dict(mode=mode, scaling=sc, quantity=q, layer=layer,
                                             gate=gate, unit=unit, value=float(v[unit])))
                    hist = torch.histc(a.float().cpu(), bins=self.bins, min=0.0, max=1.0)
                    hist = hist / hist.sum().clamp_min(1)
                    for c, v in zip(centers, hist.tolist()):
                        rows.append(dict(mode=mode, scaling=sc, quantity="gate_histogram",
                                         layer=layer, gate=gate, bin=c, value=v))
                    per_mode[f"l{layer}.{gate}"] = {
                        "left_saturated": float(left.mean()), "right_saturated": float(right.mean()),
                        "mean": float(a.mean()),
                        "unsaturated": float(1 - left.mean() - right.mean())}
            summary["modes"][mode] = per_mode
        memory = net.rnn.cell.memory
        if memory is not None and DETERMINISTIC in summary["modes"]:
            retain = net.rnn.cell.activation(memory.gate).label
            summary["retain_gate"] = retain
            summary["retain_kept"] = memory.kept  # the share kept: the gate, or 1 - gate
            summary["retain_gate_mean"] = summary["modes"][DETERMINISTIC][
                f"l{net.config.num_layers - 1}.{retain}"]["mean"]
        frame = make_frame(self.name, net, rows, extra_columns=("gate", "unit", "bin"))
        frame["unit"] = frame["unit"].astype("Int64")
        return ProbeResult(frame, summary)
