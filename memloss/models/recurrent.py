"""The Recurrent layer: a stack of cell layers under any scheme, with the torch.nn contract."""
from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from memloss.core import validate

from .cells import NONLINEARITIES, CellSpec, get_cell
from .masks import MaskEntry, MaskPlan, Masks, ResolvedMasks
from .paths import LAYER_RUNS, State, native_eligible, traced
from .schemes import Scheme, SiteSpec, parse_scheme
from .sites import SITES, layer_sites, mask_shape, recurrence_sites

__all__ = ["Recurrent", "PATHS", "StateLike", "check_call"]

log = logging.getLogger(__name__)

#: what ``hx`` and ``h_n`` are: one tensor for a one-state layer, else a tuple in
#: :attr:`Recurrent.state_names` order
StateLike = "Tensor | tuple[Tensor, ...]"
#: execution paths; "auto" picks native (torch.nn/cuDNN) when no mask acts inside the
#: recurrence and the cell has a torch.nn module, else fused
PATHS = ("auto", "reference", "native", "fused")


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
    if torch.is_autocast_enabled(input.device.type):
        return  # autocast casts input, states and weights to its own dtype
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
        cell: a registered cell (``memloss ls cells``: ``"lstm"``, ``"gru"``, ``"rnn"``,
            ``"layernorm-lstm"``).
        input_size: features of the input ``x``.
        hidden_size: features of the hidden state ``h``.
        num_layers: stacked layers; the ``input`` site acts on each layer's input (so
            between layers too) and the ``output`` site on the last layer's output.
        scheme: a scheme object or its text form (``"semeniuta:p=0.25+zaremba:p=0.5"``).
        batch_first: input and output as ``[B, T, *]``.
        nonlinearity: ``"tanh"`` or ``"relu"`` (vanilla RNN only).
        bias: use the cell's bias vectors.
        path: ``"auto"``, ``"reference"``, ``"native"`` or ``"fused"``; ``auto`` takes
            native when no mask acts inside the recurrence, else fused (see
            :meth:`chosen_path`, also shown in ``repr``). While the model is traced
            (``torch.compile``, ``torch.export``, ``torch.jit.trace``, ``torch.func``) every
            path runs the reference loop.
        applied_outside: sites of the scheme that the enclosing module applies itself (a
            :class:`~memloss.models.net.Net` applies ``embedding``); any other site this layer
            cannot apply is rejected.

    Parameters are named as in ``torch.nn.LSTM`` (``weight_ih_l0`` ...) for the cells torch
    has, so a state dict of an ``nn.LSTM``/``nn.GRU``/``nn.RNN`` loads directly; other cells
    add theirs (``{name}_l{k}``, :attr:`CellSpec.params`).

    Shape:
        - input: ``[T, B, input_size]`` (``[B, T, input_size]`` with ``batch_first``)
        - hx: the state, one ``[num_layers, B, H]`` tensor per name in :attr:`state_names`:
          a tensor for GRU/RNN (``h``), a tuple ``(h_0, c_0)`` for LSTMs, and
          ``(h_0, c_0, o_0)`` under a scheme whose output gate carries over steps
          (Krueger's ``output-zoneout``; ``(h_0, c_0)`` alone starts the gate afresh)
        - output: ``[T, B, H]`` (``[B, T, H]`` with ``batch_first``), h_n like hx (all of
          :attr:`state_names`)
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 scheme: "Scheme | str | None" = None, batch_first: bool = False,
                 nonlinearity: str = "tanh", bias: bool = True, path: str = "auto", *,
                 applied_outside: Sequence[str] = ()) -> None:
        super().__init__()
        self.cell: CellSpec = get_cell(cell)
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            validate.integer("Recurrent", name, v)
        validate.choice("Recurrent", "nonlinearity", nonlinearity, NONLINEARITIES)
        if nonlinearity not in self.cell.nonlinearities:
            raise ValueError(f"nonlinearity={nonlinearity!r} does not apply to the {cell} cell "
                             f"(it takes {', '.join(self.cell.nonlinearities)})")
        validate.choice("Recurrent", "path", path, PATHS)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.nonlinearity, self.bias, self.path = batch_first, nonlinearity, bias, path
        self.scheme: Scheme = parse_scheme(scheme)
        sites = self.scheme.sites(self.cell)
        outside = [s for s in sites if SITES.get(s).acts == "net" and s not in applied_outside]
        if outside:
            raise ValueError(
                f"scheme {self.scheme.spec!r} places a mask at the {outside[0]!r} site "
                f"({SITES.describe(outside[0])}), which a Recurrent layer cannot apply; use a "
                "Net (NetConfig with vocab_size) or drop that part of the scheme "
                "(e.g. p_embedding=0)")
        self.sites: dict[str, SiteSpec] = {k: v for k, v in sites.items()
                                           if SITES.get(k).acts != "net"}
        #: the recurrent state, in ``hx``/``h_n`` order
        self.state_names: tuple[str, ...] = self.cell.state_names(tuple(self.sites))
        self._plan = self._make_plan()
        G = self.cell.num_gates
        for k in range(num_layers):
            I = input_size if k == 0 else hidden_size
            for spec in self.cell.params:
                if spec.bias and not bias:
                    continue
                self.register_parameter(f"{spec.name}_l{k}",
                                        nn.Parameter(torch.empty(spec.shape(G, I, hidden_size))))
        self.reset_parameters()

    def reset_parameters(self, init_range: float | None = None) -> None:
        """Weights and biases uniform(-r, r), ``r = 1/sqrt(H)`` as torch.nn unless
        ``init_range`` is given; normalization gains 1 and shifts 0."""
        r = init_range if init_range is not None else 1.0 / math.sqrt(self.hidden_size)
        init = {spec.name: spec.init for spec in self.cell.params}
        for name, p in self.named_parameters():
            kind = init[name.rsplit("_l", 1)[0]]
            if kind == "uniform":
                nn.init.uniform_(p, -r, r)
            else:
                nn.init.constant_(p, 1.0 if kind == "ones" else 0.0)

    def layer_params(self, k: int) -> dict[str, Tensor]:
        """Layer ``k``'s parameters by their cell name (``weight_ih``, ...)."""
        out = {}
        for spec in self.cell.params:
            p = getattr(self, f"{spec.name}_l{k}", None)
            if p is not None:
                out[spec.name] = p
        return out

    # --- masks ---------------------------------------------------------------------------
    def mask_plan(self) -> MaskPlan:
        """The masks this layer's scheme needs, keyed ``l{k}.{site}`` and ``output`` (fixed
        by the scheme, the cell and the sizes; built once)."""
        return self._plan

    def _make_plan(self) -> MaskPlan:
        G, H = self.cell.num_gates, self.hidden_size
        entries: list[MaskEntry] = []
        for k in range(self.num_layers):
            I = self.input_size if k == 0 else H
            for site in layer_sites():
                spec = self.sites.get(site)
                if spec is not None:
                    entries.append(MaskEntry(f"l{k}.{site}", spec, mask_shape(site, spec, G, I, H)))
        if "output" in self.sites:
            spec = self.sites["output"]
            entries.append(MaskEntry("output", spec, mask_shape("output", spec, G, H, H)))
        return MaskPlan(tuple(entries))

    def chosen_path(self, device: torch.device | None = None) -> str:
        """The path ``forward`` takes in eager mode (``auto`` resolved): ``"native"``,
        ``"fused"`` or ``"reference"``. Record it in run configs; ``device`` is reserved for
        device-dependent choices (all three paths run on CPU and CUDA). While the model is
        traced (compile, export, jit.trace, torch.func) it runs the reference loop."""
        if self.path != "auto":
            return self.path
        return "native" if native_eligible(self.sites, self.cell) else "fused"

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

    def _initial_state(self, hx: object, B: int, x: Tensor) -> list[Tensor | None]:
        """One ``[L, B, H]`` tensor (or None: a carried state not given) per state name."""
        names = self.state_names
        want = (self.num_layers, B, self.hidden_size)
        own = len(self.cell.state)
        if hx is None:
            return [x.new_zeros(want) for _ in range(own)] + [None] * (len(names) - own)
        if len(names) == 1:
            if not isinstance(hx, Tensor):
                raise ValueError(f"hx for a {self.cell.name} layer must be one tensor h_0")
            given: list[Tensor | None] = [hx]
        else:
            form = "(" + ", ".join(f"{n}_0" for n in names) + ")"
            if not isinstance(hx, (tuple, list)) or len(hx) not in (own, len(names)):
                short = " or (" + ", ".join(f"{n}_0" for n in names[:own]) + ")" \
                    if own < len(names) else ""
                kind = "pair" if len(names) == 2 else "tuple"
                raise ValueError(f"hx for this {self.cell.name} layer must be a {kind} "
                                 f"{form}{short}")
            given = list(hx) + [None] * (len(names) - len(hx))
        for name, s in zip(names, given):
            if s is not None and tuple(s.shape) != want:
                raise ValueError(f"{name}_0 has shape {tuple(s.shape)}, expected {want} "
                                 "[num_layers, B, hidden_size]")
        return given

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

    def _run_path(self) -> str:
        if traced():
            return "reference"
        path = self.chosen_path()
        if path == "native" and not native_eligible(self.sites, self.cell):
            inside = sorted(set(self.sites) & recurrence_sites())
            why = (f"it has masks inside the recurrence ({inside})" if inside else
                   f"torch.nn has no {self.cell.name} module" if self.cell.native is None
                   else "its input masks are per gate")
            raise ValueError(f"path='native' cannot run scheme {self.scheme.spec!r} on a "
                             f"{self.cell.name} cell: {why}; use path='reference' or 'auto'")
        return path

    def forward(self, input: Tensor, hx: "Tensor | Sequence[Tensor] | None" = None, *,
                masks: Mapping[str, Tensor] | None = None, stochastic: bool | None = None,
                generator: torch.Generator | None = None
                ) -> tuple[Tensor, "Tensor | tuple[Tensor, ...]"]:
        """Run the stack. ``masks`` (from ``mask_plan().sample``) replays exact masks;
        otherwise masks are sampled when ``stochastic`` (default: ``self.training``) and
        replaced by their expectation when not. Under CPU/CUDA autocast the layer computes
        in the autocast dtype and returns outputs and states in it (as ``nn.LSTM`` does)."""
        check_call(input, hx, masks, self.weight_ih_l0, 1 if self.batch_first else 0)
        self._check_input(input)
        x = input.transpose(0, 1) if self.batch_first else input
        T, B = x.shape[0], x.shape[1]
        if isinstance(masks, ResolvedMasks):  # resolved by the caller (a Net) for this forward
            m: Masks = masks
        else:
            m = self.resolve_masks(T, B, masks=masks, stochastic=stochastic, generator=generator,
                                   device=x.device, dtype=x.dtype)
        state0 = self._initial_state(hx, B, x)
        run = LAYER_RUNS[self._run_path()]
        params = [self.layer_params(k) for k in range(self.num_layers)]
        kind = x.device.type
        autocast = x.is_floating_point() and torch.is_autocast_enabled(kind)
        if autocast:  # compute in the autocast dtype, as torch.nn's recurrent kernels do
            dt = torch.get_autocast_dtype(kind)
            x = x.to(dt)
            state0 = [None if s is None else s.to(dt) for s in state0]
            params = [{k: v.to(dt) for k, v in p.items()} for p in params]
            m = {k: v.to(dt) for k, v in m.items()}
        with torch.autocast(kind, enabled=False) if autocast else nullcontext():
            finals: list[State] = []
            for k in range(self.num_layers):
                x, st = run(self.cell, x, tuple(None if s is None else s[k] for s in state0),
                            params[k], self._plan.layer(m, k), self.nonlinearity)
                finals.append(st)
            if "output" in m:
                x = x * m["output"]
        out = x.transpose(0, 1) if self.batch_first else x
        h_n = tuple(torch.stack([f[i] for f in finals]) for i in range(len(self.state_names)))
        return out, (h_n if len(h_n) > 1 else h_n[0])

    def extra_repr(self) -> str:
        return (f"{self.cell.name}, {self.input_size}, {self.hidden_size}, "
                f"num_layers={self.num_layers}, scheme={self.scheme.spec!r}, path={self.path!r}, "
                f"chosen_path={self.chosen_path()!r}")

