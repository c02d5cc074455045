"""``mask-audit``: what every mask of a model does, measured on the model itself.

For each mask of the net's plan (key ``embedding``, ``output`` or ``l{layer}.{site}``) the
probe states the declaration (site, layer, kind, sampling, rate, scaling) and checks it by
measurement, each measured number next to the value the declaration implies:

* the net's training forward draws exactly the masks of its own sampler
  (``sampler_replay``), so ``draws`` draws of that sampler are what training applies:
  their drop rate, the value of a kept unit (the scaling), how often a unit's mask
  changes from one step to the next and from one sequence to the next (per step, per
  sequence or once per forward), and for a tied mask how often it agrees with its source;
* where the mask sits: the net is run with that one mask drawn and every other at its
  expectation, and every state of the cell (``h``, and ``c`` for the LSTM: its
  ``CellSpec.state``) of every layer after every step and the outputs are compared with the
  all-expected run (``changed``);
* deterministic inference: the net's own eval-mode forward equals the forward with the
  expected masks (``eval_vs_expected``), and for each mask the one test-time factor among
  ``{1, 1-p, p, 0}`` that reproduces the eval-mode outputs (``test_value``).

The states after each step are read from the full forward over each prefix of the
sequence (exact for any model, whatever its state holds; quadratic in ``length``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from memloss.core import validate
from memloss.models import MaskEntry, Masks, Net
from memloss.models.masks import tie_holds
from memloss.models.inference import DETERMINISTIC, TRAIN_MODE, expected_masks, net_dtype

from .base import PROBES, Probe, ProbeResult, Quantity, checked, default_generator, make_frame, \
    net_device
from .data import first_batch, split_field
from .unroll import split_state

__all__ = ["MaskAudit", "mask_statistics", "declared_statistics", "dropped", "acts_on"]


def dropped(entry: MaskEntry, m: Tensor) -> Tensor:
    """Where a sampled mask drops (dropout: 0) or zones out (zoneout: 1), as booleans."""
    return m == 1 if entry.spec.kind == "zoneout" else m == 0


def _changes(d: Tensor, axis: int | None) -> tuple[float, int]:
    """Fraction of neighbouring positions along ``axis`` whose values differ, and the number
    of pairs compared (0 and 0 when the mask has no such axis: one value for every step or
    every sequence)."""
    if axis is None or d.shape[axis] < 2:
        return 0.0, 0
    a, b = d.narrow(axis, 1, d.shape[axis] - 1), d.narrow(axis, 0, d.shape[axis] - 1)
    return float((a != b).double().mean()), a.numel()


def mask_statistics(entry: MaskEntry, draws: list[Tensor]) -> dict[str, tuple[float, int]]:
    """Measured ``drop_rate``, ``kept_value`` (dropout), ``step_change`` and
    ``sequence_change`` of sampled masks of one entry, each with the number of entries it
    is a mean over (each draw shaped as the plan says: ``[T, B, ...]`` per step, ``[B, ...]``
    per sequence, the bare shape per forward)."""
    sampling = entry.spec.sampling
    step_axis = 0 if sampling == "step" else None
    seq_axis = {"step": 1, "sequence": 0}.get(sampling)
    d = torch.stack([dropped(entry, m) for m in draws])  # leading draw axis
    shift = 1  # past the draw axis
    out = {"drop_rate": (float(d.double().mean()), d.numel()),
           "step_change": _changes(d, None if step_axis is None else step_axis + shift),
           "sequence_change": _changes(d, None if seq_axis is None else seq_axis + shift)}
    if entry.spec.kind == "dropout":
        kept = torch.cat([m[~dropped(entry, m)].flatten() for m in draws])
        out["kept_value"] = (float(kept.double().mean()) if kept.numel() else math.nan,
                             kept.numel())
    return out


def declared_statistics(entry: MaskEntry) -> dict[str, float]:
    """What the declaration implies for :func:`mask_statistics`' numbers."""
    spec = entry.spec
    p = spec.p
    flip = 2 * p * (1 - p)  # P(two independent draws differ)
    out = {"drop_rate": p,
           "step_change": flip if spec.sampling == "step" else 0.0,
           "sequence_change": 0.0 if spec.sampling == "forward" else flip}
    if spec.kind == "dropout":
        out["kept_value"] = float(spec.train_value(torch.tensor(1.0)))  # type: ignore[arg-type]
    return out


def _prefix_masks(net: Net, masks: Masks, steps: int) -> Masks:
    """The masks of the first ``steps`` steps (per-step masks cut; others unchanged)."""
    plan = net.mask_plan()
    out: Masks = {}
    for key, m in masks.items():
        e = plan.get(key)
        out[key] = m[:steps] if e is not None and e.spec.sampling == "step" and m.dim() else m
    return out


def _trajectory(net: Net, x: Tensor, masks: Masks) -> dict[str, Tensor]:
    """``{"h": [T, L, B, H], "c": ..., "output": [B, T, C]}``: every state of the cell after
    every step, read from the full forward over each prefix, and the outputs of the whole
    sequence."""
    T = x.shape[1]
    parts: dict[str, list[Tensor]] = {n: [] for n in net.rnn.cell.state}
    out = None
    for t in range(1, T + 1):
        out, hx = net(x[:, :t], masks=_prefix_masks(net, masks, t))
        for name, v in split_state(net, hx).items():
            parts[name].append(v)
    assert out is not None
    return {**{n: torch.stack(v) for n, v in parts.items()}, "output": out}


def _differs(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise: ``a`` and ``b`` differ by more than rounding (relative 1e-6, float64 1e-12)."""
    tol = 1e-12 if a.dtype == torch.float64 else 1e-6
    return (a - b).abs() > tol * (1.0 + b.abs())


def _max_gap(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max()) if a.numel() else 0.0


@PROBES.register("mask-audit", "every mask of the model, measured: where it acts, per step or per "
                 "sequence, rate and kept value, tie; deterministic inference uses the expected "
                 "masks")
@dataclass(frozen=True)
class MaskAudit(Probe):
    """Args: ``draws`` samples of the net's mask sampler for the rates; ``batch_size``
    sequences and ``length`` steps of ``split`` to run the net on."""

    name: ClassVar[str] = "mask-audit"
    title: ClassVar[str] = "What every mask does, measured"
    rank: ClassVar[int] = 80
    quantities: ClassVar[dict[str, Quantity]] = {
        "sampler_replay": Quantity("largest output gap, training forward vs its sampler's masks",
                                   "absolute difference"),
        "eval_vs_expected": Quantity("largest output gap, eval mode vs the expected masks",
                                     "absolute difference"),
        "drop_rate": Quantity("share of units dropped (zoned out)", "fraction"),
        "kept_value": Quantity("value of a kept unit", "multiplier"),
        "step_change": Quantity("share of units whose mask changes from one step to the next",
                                "fraction"),
        "sequence_change": Quantity("share of units whose mask differs between neighbouring "
                                    "sequences", "fraction"),
        "tie_agreement": Quantity("share of a tied mask agreeing with its source", "fraction"),
        "changed": Quantity("share of values changed by this mask alone", "fraction"),
        "test_value": Quantity("test-time factor reproducing eval mode", "multiplier"),
    }
    draws: int = checked(32, validate.integer)
    batch_size: int = checked(8, validate.integer)
    length: int = checked(6, validate.integer)
    split: str = checked("test", split_field)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        return {"draws": 4, "batch_size": 4, "length": 4}

    @torch.no_grad()
    def __call__(self, net: Net, task: Any, *, generator: torch.Generator | None = None
                 ) -> ProbeResult:
        gen = default_generator(generator)
        x = first_batch(net, task, self.split, self.batch_size).inputs[:, :self.length]
        B, T = int(x.shape[0]), int(x.shape[1])
        plan = net.mask_plan()
        device, dtype = net_device(net), net_dtype(net)
        seed = int(torch.randint(0, 2**31 - 1, (), generator=gen))
        was_training = net.training
        try:
            net.eval()
            eval_out = net(x)[0]
            expected = expected_masks(net, device=device)
            base = _trajectory(net, x, expected)
            train_out = net(x, stochastic=True, generator=torch.Generator().manual_seed(seed))[0]
            replay = plan.sample(T, B, generator=torch.Generator().manual_seed(seed),
                                 device=device, dtype=dtype)
            rows = [dict(mode=TRAIN_MODE, quantity="sampler_replay", expected=0.0,
                         value=_max_gap(train_out, net(x, masks=replay)[0])),
                    dict(mode=DETERMINISTIC, quantity="eval_vs_expected", expected=0.0,
                         value=_max_gap(eval_out, base["output"]))]
            draws = [plan.sample(T, B, generator=gen, device=device, dtype=dtype)
                     for _ in range(self.draws)]
            summary: dict[str, Any] = {"masks": {}, "length": T, "draws": self.draws}
            for entry in plan.entries:
                info = self._audit(net, x, entry, draws, expected, base, eval_out, rows)
                summary["masks"][entry.key] = info
        finally:
            net.train(was_training)
        summary["mismatches"] = [f"{r.get('mask') or 'net'}:{r['quantity']}" for r in rows
                                 if not _agrees(r)]
        frame = make_frame(self.name, net, rows, extra_columns=(
            "mask", "site", "sampling", "kind", "p", "part", "expected", "n"))
        return ProbeResult(frame, summary)

    def _audit(self, net: Net, x: Tensor, entry: MaskEntry, draws: list[Masks],
               expected: Masks, base: dict[str, Tensor], eval_out: Tensor,
               rows: list[dict[str, Any]]) -> dict[str, Any]:
        spec = entry.spec
        layer = int(entry.key[1:].split(".")[0]) if entry.key.startswith("l") and "." in entry.key \
            else None
        site = entry.key.rsplit(".", 1)[-1]
        common = dict(mask=entry.key, site=site, sampling=spec.sampling, kind=spec.kind, p=spec.p,
                      layer=layer)
        measured = mask_statistics(entry, [d[entry.key] for d in draws])
        for q, want in declared_statistics(entry).items():
            value, n = measured[q]
            rows.append(dict(common, mode=TRAIN_MODE, quantity=q, value=value, expected=want,
                             n=n))
        if spec.tied_to is not None:
            src = entry.source_key
            src_spec = next(e.spec for e in net.mask_plan().entries if e.key == src)
            agree = torch.stack([tie_holds(spec, d[entry.key], src_spec, d[src]) for d in draws])
            rows.append(dict(common, mode=TRAIN_MODE, quantity="tie_agreement",
                             value=float(agree.double().mean()), expected=1.0))
        # where it acts: this one mask drawn, every other at its expectation
        alone = dict(expected)
        alone[entry.key] = draws[0][entry.key]
        traj = _trajectory(net, x, alone)
        first: dict[str, int] = {}  # changed tensor -> first step it changes at
        for part in base:
            diff = _differs(traj[part], base[part])
            if part == "output":
                frac = diff.double().mean(dim=(0, 2))  # per step
                rows += [dict(common, mode=TRAIN_MODE, quantity="changed", part=part, t=t,
                              layer=None, value=float(v)) for t, v in enumerate(frac)]
                if bool(diff.any()):
                    first["output"] = int(frac.nonzero()[0])
                continue
            frac = diff.double().mean(dim=(2, 3))  # [T, L]
            for t in range(frac.shape[0]):
                for k in range(frac.shape[1]):
                    rows.append(dict(common, mode=TRAIN_MODE, quantity="changed", part=part, t=t,
                                     layer=k, value=float(frac[t, k])))
            for k in range(frac.shape[1]):
                if bool(frac[:, k].any()):
                    first[f"l{k}.{part}"] = int(frac[:, k].nonzero()[0])
        test_value = self._test_value(net, x, entry, expected, eval_out)
        rows.append(dict(common, mode=DETERMINISTIC, quantity="test_value", value=test_value,
                         expected=spec.test_value))
        return {"site": site, "layer": layer, "kind": spec.kind, "sampling": spec.sampling,
                "p": spec.p, "scaling": spec.scaling if spec.kind == "dropout" else None,
                "per_gate": spec.per_gate, "tied_to": spec.tied_to,
                **{q: v for q, (v, _) in measured.items()},
                "acts_on": acts_on(first), "changes": sorted(first), "test_value": test_value}

    @staticmethod
    def _test_value(net: Net, x: Tensor, entry: MaskEntry, expected: Masks,
                    eval_out: Tensor) -> float:
        """The one factor among 1, 1-p, p, 0 that, put at this mask with every other at its
        expectation, reproduces the eval-mode outputs (NaN: none or several do)."""
        p = entry.spec.p
        hits = []
        for s in sorted({1.0, 1.0 - p, p, 0.0}):
            masks = dict(expected)
            masks[entry.key] = torch.tensor(s, dtype=expected[entry.key].dtype,
                                            device=expected[entry.key].device)
            if not bool(_differs(net(x, masks=masks)[0], eval_out).any()):
                hits.append(s)
        return hits[0] if len(hits) == 1 else math.nan


def acts_on(first: dict[str, int]) -> list[str]:
    """Where a mask acts, from the step each tensor first changes at (``first``: ``l{k}.<state>``
    such as ``l{k}.h`` and ``l{k}.c``, ``output``): the tensors of the lowest layer that changes that change first
    in it (the output when no state changes)."""
    states = {k: t for k, t in first.items() if k != "output"}
    if not states:
        return sorted(first)
    low = min(int(k[1:].split(".")[0]) for k in states)
    mine = {k: t for k, t in states.items() if k.startswith(f"l{low}.")}
    t0 = min(mine.values())
    return sorted(k for k, t in mine.items() if t == t0)


def _agrees(row: dict[str, Any]) -> bool:
    """Whether a measured row agrees with its expected value: exact for replays and test
    factors, within 5 binomial standard errors for rates (over ``n`` entries)."""
    want = row.get("expected")
    value = row["value"]
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return True
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    q = row["quantity"]
    if q in ("sampler_replay", "eval_vs_expected"):
        return value <= 1e-6 * (1.0 + abs(want))
    if q in ("drop_rate", "step_change", "sequence_change") and 0.0 < want < 1.0:
        return abs(value - want) <= 5 * math.sqrt(want * (1 - want) / max(row.get("n", 1), 1))
    return abs(value - want) <= 1e-6 * (1.0 + abs(want))
