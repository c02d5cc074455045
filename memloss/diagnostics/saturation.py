"""``saturation``: how often each gate is saturated, per unit (Karpathy et al. 2015).

Gate activations are recomputed from the recorded states under deterministic inference
(masks replaced by their expectations): LSTM gates ``input``, ``forget``, ``output``
(torch order i, f, g, o); GRU gates ``reset`` and ``update`` (torch form
``h_t = (1 - z) n + z h_{t-1}``, so ``update`` is the gate that keeps memory); a vanilla
tanh RNN has no gate, so its ``activation`` h is mapped to ``(h + 1) / 2`` and judged on
the same thresholds. A unit is left-saturated at a step when the gate is below ``low``
(0.1) and right-saturated above ``high`` (0.9). The distribution of every gate is a
histogram in long format (``bin`` = bin centre, value = fraction).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from memloss.core import validate
from memloss.models import Masks, Net
from memloss.models.cells.layernorm_lstm import EPS as LN_EPS

from .base import PROBES, Probe, ProbeResult, make_frame
from .data import check_split, probe_context
from memloss.models.inference import DETERMINISTIC, OTHER_SCALING, check_modes, mode_masks, mode_scaling
from .unroll import unroll

__all__ = ["Saturation", "gate_activations", "GATES"]

GATES = {"lstm": ("input", "forget", "output"), "layernorm-lstm": ("input", "forget", "output"),
         "gru": ("reset", "update"), "rnn": ("activation",)}
RETAIN_GATE = {"lstm": "forget", "layernorm-lstm": "forget", "gru": "update"}


def _layer_inputs(net: Net, inputs: Tensor, masks: Masks, h: Tensor) -> list[Tensor]:
    """Each layer's input ``[T, B, I]`` (layer 0: the (embedded) input; then the layer below)."""
    if net.embedding is not None:
        x = net.embedding(inputs)
        me = masks.get("embedding")
        if me is not None:
            x = x * me  # deterministic masks are 0-dim
    else:
        x = inputs
    return [x.transpose(0, 1)] + [h[:, k] for k in range(h.shape[1] - 1)]


def gate_activations(net: Net, inputs: Tensor, masks: Masks, h: Tensor) -> list[dict[str, Tensor]]:
    """Per layer, ``{gate: [T, B, H]}`` recomputed from the states ``h`` ([T, L, B, H], the
    state after every step) under deterministic (0-dim) ``masks``."""
    if any(m.dim() > 0 for m in masks.values()):
        raise ValueError("gate_activations needs deterministic masks (0-dim expectations)")
    rnn = net.rnn
    cell = rnn.cell.name
    T, L, B, H = h.shape
    out = []
    for k, x in enumerate(_layer_inputs(net, inputs, masks, h)):
        h_prev = torch.cat([h.new_zeros(1, B, H), h[:-1, k]])
        m_in, m_rec = masks.get(f"l{k}.input"), masks.get(f"l{k}.recurrent")
        w_hh = getattr(rnn, f"weight_hh_l{k}")
        if f"l{k}.weight" in masks:
            w_hh = w_hh * masks[f"l{k}.weight"]
        gi = F.linear(x if m_in is None else x * m_in, getattr(rnn, f"weight_ih_l{k}"),
                      getattr(rnn, f"bias_ih_l{k}", None))
        gh = F.linear(h_prev if m_rec is None else h_prev * m_rec, w_hh,
                      getattr(rnn, f"bias_hh_l{k}", None))
        if cell == "layernorm-lstm":  # LN of each product, the bias after the input's
            p = rnn.layer_params(k)
            gi = rnn.cell.project(gi, p)
            gh = F.layer_norm(gh, gh.shape[-1:], p["ln_hh_weight"], None, LN_EPS)
        if cell in ("lstm", "layernorm-lstm"):
            i, f, _, o = (gi + gh).chunk(4, dim=-1)
            out.append({"input": torch.sigmoid(i), "forget": torch.sigmoid(f),
                        "output": torch.sigmoid(o)})
        elif cell == "gru":
            (ir, iz, _), (hr, hz, _) = gi.chunk(3, dim=-1), gh.chunk(3, dim=-1)
            out.append({"reset": torch.sigmoid(ir + hr), "update": torch.sigmoid(iz + hz)})
        else:
            out.append({"activation": h[:, k]})
    return out


@PROBES.register("saturation", "fraction of time each gate is left- (<0.1) or right-saturated "
                 "(>0.9) per unit (Karpathy 2015); gate-value histograms")
@dataclass(frozen=True)
class Saturation(Probe):
    """Args: ``low``/``high`` saturation thresholds; ``bins`` histogram bins on [0, 1]."""

    name: ClassVar[str] = "saturation"
    low: float = 0.1
    high: float = 0.9
    bins: int = 20
    batch_size: int = 64
    split: str = "test"
    modes: tuple[str, ...] = (DETERMINISTIC,)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        return {"batch_size": 8}

    def __post_init__(self) -> None:
        if not (isinstance(self.low, (int, float)) and isinstance(self.high, (int, float))
                and 0 < self.low < self.high < 1):
            raise ValueError(f"{self.name}: need 0 < low < high < 1, got low={self.low!r}, "
                             f"high={self.high!r}")
        validate.integer(self.name, "bins", self.bins)
        validate.integer(self.name, "batch_size", self.batch_size)
        check_split(self.name, self.split)
        check_modes(self.name, self.modes, (DETERMINISTIC, OTHER_SCALING))

    @torch.no_grad()
    def __call__(self, net: Net, task: Any, *, generator: torch.Generator | None = None
                 ) -> ProbeResult:
        if net.config.cell == "rnn" and net.config.nonlinearity != "tanh":
            raise ValueError(f"{self.name}: a {net.config.nonlinearity} RNN has neither gates nor a "
                             "bounded activation; run this probe on lstm, gru or tanh-rnn nets")
        gen, device, view, batch = probe_context(net, task, self.split, self.batch_size, generator,
                                                 self.name)
        B, T = batch.inputs.shape[:2]
        rows: list[dict[str, Any]] = []
        summary: dict[str, Any] = {"low": self.low, "high": self.high, "modes": {}}
        edges = torch.linspace(0, 1, self.bins + 1)
        centers = ((edges[:-1] + edges[1:]) / 2).tolist()
        for mode in self.modes:
            masks = mode_masks(net, mode, T, B, generator=gen, device=device)
            h, _ = unroll(view, batch.inputs, masks).stacked()
            sc = mode_scaling(net, mode)
            per_mode: dict[str, Any] = {}
            for layer, gates in enumerate(gate_activations(view, batch.inputs, masks, h)):
                for gate, a in gates.items():
                    a = (a + 1) / 2 if gate == "activation" else a
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
        retain = RETAIN_GATE.get(net.config.cell)
        if retain is not None and DETERMINISTIC in summary["modes"]:
            summary["retain_gate"] = retain
            summary["retain_gate_mean"] = summary["modes"][DETERMINISTIC][
                f"l{net.config.num_layers - 1}.{retain}"]["mean"]
        frame = make_frame(self.name, net, rows, extra_columns=("gate", "unit", "bin"))
        frame["unit"] = frame["unit"].astype("Int64")
        return ProbeResult(frame, summary)
