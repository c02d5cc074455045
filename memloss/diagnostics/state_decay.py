"""``state-decay``: how the state's size evolves over time in each inference mode.

Measures the mean per-sequence norm of every state of the cell (``||h_t||``, and
``||c_t||`` for a cell whose layout has ``c``; quantity ``<state>_norm``, per layer) under
deterministic inference (own and other scaling convention) and in training mode (averaged
over K mask samples), their ratio to the training-mode norm, and overlays Semeniuta's
open-gate analysis for a cell that keeps its memory (``CellSpec.memory``): eq. 17 (the
weight ``s^(t+1)`` of the initial state when the memory state itself is dropped, at the
site the cell declares: ``cell`` for the LSTM, ``hidden`` for the GRU) and eq. 19 (the
constant weight of every update when only the update is dropped, ``update`` site). A
cell without a memory (a vanilla RNN) overwrites its state at every step, so section 3.2
does not apply to it and it gets no analytic rows.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch

from memloss.core import validate
from memloss.models import Net, SiteSpec

from .base import PROBES, Probe, ProbeResult, Quantity, checked, make_frame
from .data import modes_field, probe_context, split_field
from .fit import log_slope, step_factor
from memloss.models.inference import DETERMINISTIC, OTHER_SCALING, TRAIN_MODE, mode_masks, \
    mode_scaling, net_dtype
from .unroll import Trace, join_state, unroll

__all__ = ["StateDecay", "state_norms", "analytic_weights"]


def state_norms(trace: Trace) -> dict[str, torch.Tensor]:
    """``{"<state>_norm": [T, L]}`` for every state of the cell (``h_norm``, ``c_norm``):
    the mean over the batch of per-sequence norms."""
    return {f"{name}_norm": v.norm(dim=-1).mean(dim=-1) for name, v in trace.stacked().items()}


def analytic_weights(spec: SiteSpec, T: int, kind: str, mode: str) -> list[float]:
    """Semeniuta's open-gate weights (all gates 1) for steps ``t = 0..T-1``.

    ``kind="eq17"``: weight of the initial state in the state after step t when the state
    is dropped at every step (deterministic: ``s^(t+1)`` with ``s`` the test-time factor;
    training mode: ``E[prod of the t+1 masks]``, i.e. ``(q k)^(t+1)`` per step and
    ``q k^(t+1)`` per sequence, ``q = 1-p`` the keep probability and ``k`` the multiplier of a
    kept unit). ``kind="eq19"``: weight of each update when the update is dropped (constant:
    ``s``, or ``q k`` in training mode).
    """
    q = 1.0 - spec.p
    if mode == OTHER_SCALING:
        other = {"inverted": "expectation", "expectation": "inverted"}[spec.scaling]
        spec = replace(spec, scaling=other)
    if mode == TRAIN_MODE:
        k = float(spec.train_value(1.0))  # type: ignore[arg-type]
        if kind == "eq19":
            return [q * k] * T
        if spec.sampling == "sequence":
            return [q * k ** (t + 1) for t in range(T)]
        return [(q * k) ** (t + 1) for t in range(T)]
    s = spec.test_value
    return [s] * T if kind == "eq19" else [s ** (t + 1) for t in range(T)]


@PROBES.register("state-decay", "norms of c_t and h_t over time per inference mode, their ratio "
                 "to training mode, Semeniuta eq. 17/19 curves, fitted decay rate")
@dataclass(frozen=True)
class StateDecay(Probe):
    """Args: ``samples`` training-mode mask draws (K); ``batch_size`` sequences of ``split``;
    ``init_scale`` > 0 starts from a random state N(0, init_scale^2) (the same in every
    mode) instead of zeros, which makes the decay of the initial state visible."""

    name: ClassVar[str] = "state-decay"
    title: ClassVar[str] = "How the state fades over time"
    rank: ClassVar[int] = 10
    quantities: ClassVar[dict[str, Quantity]] = {
        "h_norm": Quantity("hidden-state norm ||h_t||", "L2 norm"),
        "c_norm": Quantity("cell-state norm ||c_t||", "L2 norm"),
        "h_ratio": Quantity("||h_t|| relative to training mode", "ratio"),
        "c_ratio": Quantity("||c_t|| relative to training mode", "ratio"),
        "eq17": Quantity("weight of the initial state, memory state dropped (Semeniuta eq. 17)",
                         "weight"),
        "eq19": Quantity("weight of each update, update dropped (Semeniuta eq. 19)", "weight"),
        "eq17_ratio": Quantity("eq. 17 weight relative to training mode", "ratio"),
        "eq19_ratio": Quantity("eq. 19 weight relative to training mode", "ratio"),
    }
    samples: int = checked(8, validate.integer)
    batch_size: int = checked(32, validate.integer)
    split: str = checked("test", split_field)
    init_scale: float = checked(0.0, validate.number, 0.0)
    modes: tuple[str, ...] = checked((DETERMINISTIC, OTHER_SCALING, TRAIN_MODE), modes_field,
                                     DETERMINISTIC, OTHER_SCALING, TRAIN_MODE)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        return {"samples": 2, "batch_size": 8}

    def initial_state(self, net: Net, B: int, generator: torch.Generator,
                      device: torch.device) -> object:
        if self.init_scale == 0:
            return None
        shape = (net.config.num_layers, B, net.config.hidden_size)
        dtype = net_dtype(net)
        return join_state(net, {
            name: (torch.randn(shape, generator=generator, dtype=dtype) * self.init_scale
                   ).to(device) for name in net.rnn.cell.state})

    @torch.no_grad()
    def __call__(self, net: Net, task: Any, *, generator: torch.Generator | None = None
                 ) -> ProbeResult:
        gen, device, view, batch = probe_context(net, task, self.split, self.batch_size, generator,
                                                 self.name)
        B, T = batch.inputs.shape[:2]
        hx = self.initial_state(net, B, gen, device)
        norms: dict[str, dict[str, torch.Tensor]] = {}
        spread: dict[str, dict[str, torch.Tensor]] = {}
        modes = list(self.modes)
        for mode in dict.fromkeys(modes + [TRAIN_MODE]):  # ratios need training mode
            draws = self.samples if mode == TRAIN_MODE else 1
            runs = [state_norms(unroll(view, batch.inputs,
                                       mode_masks(net, mode, T, B, generator=gen, device=device),
                                       hx)) for _ in range(draws)]
            norms[mode] = {q: torch.stack([r[q] for r in runs]).mean(0) for q in runs[0]}
            spread[mode] = {q: torch.stack([r[q] for r in runs]).std(0, correction=0)
                            for q in runs[0]}
        rows: list[dict[str, Any]] = []
        for mode in modes:
            sc = mode_scaling(net, mode)
            for q, v in norms[mode].items():
                ref = norms[TRAIN_MODE][q]
                for t in range(T):
                    for layer in range(v.shape[1]):
                        rows.append(dict(mode=mode, scaling=sc, quantity=q, layer=layer, t=t,
                                         value=float(v[t, layer]), std=float(spread[mode][q][t, layer])))
                        if mode != TRAIN_MODE:
                            r = float(v[t, layer] / ref[t, layer]) if ref[t, layer] > 0 else float("nan")
                            rows.append(dict(mode=mode, scaling=sc, quantity=q.replace("norm", "ratio"),
                                             layer=layer, t=t, value=r))
        analytic = self._analytic(net, T)
        for (kind, mode), w in analytic.items():
            if mode not in modes:
                continue
            sc = mode_scaling(net, mode)
            for t in range(T):
                rows.append(dict(mode=mode, scaling=sc, quantity=kind, t=t, value=w[t]))
                if mode != TRAIN_MODE:
                    ref = analytic[(kind, TRAIN_MODE)][t]
                    rows.append(dict(mode=mode, scaling=sc, quantity=f"{kind}_ratio", t=t,
                                     value=w[t] / ref if ref > 0 else float("nan")))
        frame = make_frame(self.name, net, rows, extra_columns=("std",))
        return ProbeResult(frame, self._summary(net, norms, analytic, T))

    def _sites(self, net: Net) -> dict[str, SiteSpec]:
        """The sites eq. 17 and eq. 19 describe in this net: the site dropping the cell's
        memory state (``CellSpec.memory.site``) and ``update``; none for a cell without a
        memory (a vanilla RNN)."""
        sites = net.rnn.sites
        out: dict[str, SiteSpec] = {}
        memory = net.rnn.cell.memory
        if memory is None:
            return out
        if memory.site in sites:
            out["eq17"] = sites[memory.site]
        if "update" in sites:
            out["eq19"] = sites["update"]
        return out

    def _analytic(self, net: Net, T: int) -> dict[tuple[str, str], list[float]]:
        return {(kind, mode): analytic_weights(spec, T, kind, mode)
                for kind, spec in self._sites(net).items()
                for mode in (DETERMINISTIC, OTHER_SCALING, TRAIN_MODE)}

    def _summary(self, net: Net, norms: dict[str, dict[str, torch.Tensor]],
                 analytic: dict[tuple[str, str], list[float]], T: int) -> dict[str, Any]:
        memory = net.rnn.cell.memory
        q = f"{memory.state if memory is not None else 'h'}_norm"
        ts = list(range(T))
        rate = {m: step_factor(log_slope(ts, v[q][:, -1].tolist())) for m, v in norms.items()
                if m in self.modes}
        final_ratio = {m: float(v[q][-1, -1] / norms[TRAIN_MODE][q][-1, -1])
                       for m, v in norms.items() if m in self.modes and m != TRAIN_MODE}
        return {
            "quantity": q,
            "decay_rate": rate,
            "final_ratio_to_train_mode": final_ratio,
            "final_norm": {m: float(v[q][-1, -1]) for m, v in norms.items() if m in self.modes},
            "analytic_final": {f"{k}/{m}": w[-1] for (k, m), w in analytic.items()
                               if m in self.modes},
            "site_rates": {k: s.p for k, s in self._sites(net).items()},
            "length": T,
            "samples": self.samples,
        }
