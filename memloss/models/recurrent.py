"""The Recurrent layer: a stack of LSTM/GRU/RNN layers under any scheme, torch.nn contract."""
from __future__ import annotations

import logging
import math
from typing import Mapping

import torch
from torch import Tensor, nn

from memloss.core import validate

from .cells import NONLINEARITIES, CellSpec, get_cell
from .masks import MaskEntry, MaskPlan, Masks, ResolvedMasks
from .paths import LayerWeights, native_eligible, native_layer, reference_layer
from .paths.fused import fused_layer, fused_supported
from .schemes import Scheme, SiteSpec, parse_scheme
from .sites import SITES, layer_sites, recurrence_sites

__all__ = ["Recurrent", "PATHS", "State", "check_call"]

log = logging.getLogger(__name__)

State = "Tensor | tuple[Tensor, Tensor]"
#: execution paths; "auto" picks native (torch.nn/cuDNN) when no mask acts inside the
#: recurrence, else fused where the fused path supports the cell and sites, else reference
PATHS = ("auto", "reference", "native", "fused")
_RUNS = {"reference": reference_layer, "native": native_layer, "fused": fused_layer}


def check_call(input: object, hx: object, masks: object, weight: Tensor, time_dim: int) -> None:
    """Arguments no path can run on, each refused with one clear ValueError: masks that are
    not a dict, a sequence with no time steps, and an input or ``hx`` whose floating dtype
    differs from the weights'."""
    if masks is not None and not isinstance(masks, Mapping):
        raise ValueError(f"masks must be a dict of tensors keyed like mask_plan().keys(), got a "
                         f"{type(masks).__name__}; sample one with mask_plan().sample(T, B)")
    if not isinstance(input, Tensor):
        return
    if input.dim() > time_dim and input.shape[time_dim] == 0:
        raise ValueError(f"input has no time steps (shape {tuple(input.shape)}, time is dimension "
                         f"{time_dim}); a sequence needs T >= 1")
    if input.is_floating_point() and input.dtype != weight.dtype:
        raise ValueError(f"input is {input.dtype} but the weights are {weight.dtype}; convert one "
                         f"of them (input.to({weight.dtype}) or net.to({input.dtype}))")
    for h in hx if isinstance(hx, (tuple, list)) else (hx,):
        if isinstance(h, Tensor) and h.dtype != weight.dtype:
            raise ValueError(f"hx is {h.dtype} but the weights are {weight.dtype}; convert it "
                             f"with .to({weight.dtype})")


class Recurrent(nn.Module):
    r"""A multi-layer recurrent network whose regularization is a :class:`~memloss.models.schemes.Scheme`.

    Args:
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        input_size: features of the input ``x``.
        hidden_size: features of the hidden state ``h``.
        num_layers: stacked layers; the ``input`` site acts on each layer's input (so
            between layers too) and the ``output`` site on the last layer's output.
        scheme: a scheme object or its text form (``"semeniuta:p=0.25+zaremba:p=0.5"``).
        batch_first: input and output as ``[B, T, *]``.
        nonlinearity: ``"tanh"`` or ``"relu"`` (vanilla RNN only).
        bias: use bias vectors ``b_ih`` and ``b_hh``.
        path: ``"auto"``, ``"reference"``, ``"native"`` or ``"fused"``; ``auto`` takes
            native when no mask acts inside the recurrence, else fused (see
            :meth:`chosen_path`, also shown in ``repr``).

    Parameters are named as in ``torch.nn.LSTM`` (``weight_ih_l0`` ...), so a state dict
    of an ``nn.LSTM``/``nn.GRU``/``nn.RNN`` loads directly.

    Shape:
        - input: ``[T, B, input_size]`` (``[B, T, input_size]`` with ``batch_first``)
        - hx: ``[num_layers, B, H]`` for GRU/RNN, a pair of those ``(h_0, c_0)`` for LSTM
        - output: ``[T, B, H]`` (``[B, T, H]`` with ``batch_first``), h_n like hx
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 scheme: "Scheme | str | None" = None, batch_first: bool = False,
                 nonlinearity: str = "tanh", bias: bool = True, path: str = "auto") -> None:
        super().__init__()
        self.cell: CellSpec = get_cell(cell)
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            validate.integer("Recurrent", name, v)
        validate.choice("Recurrent", "nonlinearity", nonlinearity, NONLINEARITIES)
        if nonlinearity != "tanh" and self.cell.name != "rnn":
            raise ValueError(f"nonlinearity={nonlinearity!r} applies to the rnn cell only")
        validate.choice("Recurrent", "path", path, PATHS)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.nonlinearity, self.bias, self.path = batch_first, nonlinearity, bias, path
        self.scheme: Scheme = parse_scheme(scheme)
        # the embedding site belongs to the Net (it acts on word types before this layer)
        self.sites: dict[str, SiteSpec] = {k: v for k, v in self.scheme.sites(self.cell).items()
                                           if k != "embedding"}
        self._plan = self._make_plan()
        G, H = self.cell.gates, hidden_size
        for k in range(num_layers):
            I = input_size if k == 0 else H
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(G * H, I)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(G * H, H)))
            if bias:
                self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(G * H)))
                self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(G * H)))
        self.reset_parameters()

    def reset_parameters(self, init_range: float | None = None) -> None:
        """Uniform(-r, r) init; ``r = 1/sqrt(H)`` as torch.nn unless ``init_range`` is given."""
        r = init_range if init_range is not None else 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -r, r)

    # --- masks ---------------------------------------------------------------------------
    def mask_plan(self) -> MaskPlan:
        """The masks this layer's scheme needs, keyed ``l{k}.{site}`` and ``output`` (fixed
        by the scheme, the cell and the sizes; built once)."""
        return self._plan

    def _make_plan(self) -> MaskPlan:
        G, H = self.cell.gates, self.hidden_size
        entries: list[MaskEntry] = []
        for k in range(self.num_layers):
            I = self.input_size if k == 0 else H
            for site in layer_sites():
                spec = self.sites.get(site)
                if spec is None:
                    continue
                width = {"input": I, "hidden": H}.get(SITES.get(site).width, H)
                shape = (G * H, H) if site == "weight" else ((G, width) if spec.per_gate else (width,))
                entries.append(MaskEntry(f"l{k}.{site}", spec, shape))
        if "output" in self.sites:
            entries.append(MaskEntry("output", self.sites["output"], (H,)))
        return MaskPlan(tuple(entries))

    def chosen_path(self, device: torch.device | None = None) -> str:
        """The path ``forward`` will take (``auto`` resolved): ``"native"``, ``"fused"`` or
        ``"reference"``. Record it in run configs; ``device`` is reserved for
        device-dependent choices (all three paths run on CPU and CUDA)."""
        if self.path != "auto":
            return self.path
        if native_eligible(self.sites):
            return "native"
        return "fused" if fused_supported(self.cell, self.sites) else "reference"

    # --- forward -------------------------------------------------------------------------
    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise ValueError(f"input must be a tensor, got {type(x).__name__}")
        if x.dim() != 3:
            order = "[B, T, features]" if self.batch_first else "[T, B, features]"
            raise ValueError(f"input must be 3-D {order}, got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input has {x.shape[-1]} features, expected input_size="
                             f"{self.input_size} (shape {tuple(x.shape)})")
        if not x.is_floating_point():
            raise ValueError(f"input must be floating point, got {x.dtype}; embed token ids first "
                             "(models.Net with vocab_size does this)")

    def _initial_state(self, hx: object, B: int, x: Tensor) -> tuple[Tensor, Tensor | None]:
        L, H = self.num_layers, self.hidden_size
        want = (L, B, H)
        if hx is None:
            z = x.new_zeros(want)
            return z, (x.new_zeros(want) if self.cell.has_cell else None)
        if self.cell.has_cell:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise ValueError("hx for an LSTM must be a pair (h_0, c_0)")
            h0, c0 = hx
        else:
            if not isinstance(hx, Tensor):
                raise ValueError(f"hx for a {self.cell.name} must be one tensor h_0")
            h0, c0 = hx, None
        for name, s in (("h_0", h0), ("c_0", c0)):
            if s is not None and tuple(s.shape) != want:
                raise ValueError(f"{name} has shape {tuple(s.shape)}, expected {want} "
                                 "[num_layers, B, hidden_size]")
        return h0, c0

    def resolve_masks(self, T: int, B: int, *, masks: Mapping[str, Tensor] | None,
                      stochastic: bool | None, generator: torch.Generator | None,
                      device: torch.device, dtype: torch.dtype,
                      plan: MaskPlan | None = None) -> ResolvedMasks:
        """The masks of one forward, once: the given ones validated and moved to ``device``
        and ``dtype``, or sampled (``stochastic``, default ``self.training``), or their
        expectations. ``plan`` defaults to this layer's (a Net passes its own, which adds
        the embedding)."""
        plan = self._plan if plan is None else plan
        if masks is not None:
            plan.validate(masks, T, B)
            return ResolvedMasks({k: v.to(device=device, dtype=dtype) for k, v in masks.items()})
        if stochastic is None:
            stochastic = self.training
        if stochastic:
            return ResolvedMasks(plan.sample(T, B, generator=generator, device=device,
                                             dtype=dtype))
        return ResolvedMasks(plan.expected(device=device, dtype=dtype))

    def forward(self, input: Tensor, hx: "Tensor | tuple[Tensor, Tensor] | None" = None, *,
                masks: Mapping[str, Tensor] | None = None, stochastic: bool | None = None,
                generator: torch.Generator | None = None
                ) -> tuple[Tensor, "Tensor | tuple[Tensor, Tensor]"]:
        """Run the stack. ``masks`` (from ``mask_plan().sample``) replays exact masks;
        otherwise masks are sampled when ``stochastic`` (default: ``self.training``) and
        replaced by their expectation when not."""
        check_call(input, hx, masks, self.weight_ih_l0, 1 if self.batch_first else 0)
        self._check_input(input)
        x = input.transpose(0, 1) if self.batch_first else input
        T, B = x.shape[0], x.shape[1]
        if isinstance(masks, ResolvedMasks):  # resolved by the caller (a Net) for this forward
            m: Masks = masks
        else:
            m = self.resolve_masks(T, B, masks=masks, stochastic=stochastic, generator=generator,
                                   device=x.device, dtype=x.dtype)
        h0, c0 = self._initial_state(hx, B, x)
        path = self.chosen_path(x.device)
        run = _RUNS[path]
        if path == "fused" and not fused_supported(self.cell, self.sites):
            raise ValueError(f"path='fused' does not support a {self.cell.name} cell with "
                             f"sites {sorted(self.sites)}; use path='reference' or 'auto'")
        if run is native_layer and not native_eligible(self.sites):
            inside = sorted(set(self.sites) & recurrence_sites())
            raise ValueError(f"path='native' cannot run scheme {self.scheme.spec!r}: it has masks "
                             f"inside the recurrence ({inside}); use path='reference' or 'auto'")
        hs, cs = [], []
        for k in range(self.num_layers):
            w = LayerWeights(getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}"),
                             getattr(self, f"bias_ih_l{k}", None), getattr(self, f"bias_hh_l{k}", None))
            x, h, c = run(self.cell, x, h0[k], None if c0 is None else c0[k], w,
                          self._plan.layer(m, k), self.nonlinearity)
            hs.append(h)
            cs.append(c)
        if "output" in m:
            x = x * m["output"]
        out = x.transpose(0, 1) if self.batch_first else x
        h_n = torch.stack(hs)
        return out, ((h_n, torch.stack(cs)) if self.cell.has_cell else h_n)

    def extra_repr(self) -> str:
        return (f"{self.cell.name}, {self.input_size}, {self.hidden_size}, "
                f"num_layers={self.num_layers}, scheme={self.scheme.spec!r}, path={self.path!r}, "
                f"chosen_path={self.chosen_path()!r}")
