"""The Recurrent layer: a stack of cell layers under any scheme, with the torch.nn contract."""
from __future__ import annotations

import logging
import math
import re
from contextlib import nullcontext
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from memloss.core import validate

from .cells import NONLINEARITIES, TORCH_PARAMS, CellSpec, get_cell
from .masks import MaskEntry, MaskPlan, Masks, ResolvedMasks
from .paths import LAYER_RUNS, State, native_eligible, traced
from .projection import PROJECTED_RUNS
from .schemes import Scheme, SiteSpec, parse_scheme
from .sites import SITES, layer_sites, mask_shape, recurrence_sites
from .varlen import check_lengths, reverse_within, run_lengths, zero_pads

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
    validate.real_tensor("forward", "input", input)
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


def _layer_sites(sites: Mapping[str, SiteSpec]) -> dict[str, SiteSpec]:
    """The sites of a scheme that a layer applies (those of the enclosing net left out)."""
    return {k: v for k, v in sites.items() if SITES.get(k).acts != "net"}


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
        bidirectional: each layer also reads the sequence backwards (parameters and masks
            of that direction suffixed ``_reverse``, masks drawn independently); the two
            outputs are concatenated, forward first.
        proj_size: LSTM only: project ``h`` to ``proj_size`` features (``weight_hr_l{k}``,
            as ``torch.nn.LSTM``); only schemes whose masks act outside the recurrence.
        device, dtype: where and in what the parameters are created (and initialized, so a
            seed gives the same weights as ``torch.nn`` created the same way).

    Parameters are named as in ``torch.nn.LSTM`` (``weight_ih_l0`` ...,
    ``weight_ih_l0_reverse``, ``weight_hr_l0``) for the cells torch has, so a state dict of an
    ``nn.LSTM``/``nn.GRU``/``nn.RNN`` loads directly; other cells add theirs
    (``{name}_l{k}``, :attr:`CellSpec.params`).

    ``forward(..., lengths=)`` runs a padded batch of sequences of different lengths: each
    sequence stops at its length (final state = state at its last real step, outputs past
    it zero; :mod:`memloss.models.varlen`).

    Shape (``D`` = 2 if bidirectional else 1, ``W`` = proj_size or hidden_size):
        - input: ``[T, B, input_size]`` (``[B, T, input_size]`` with ``batch_first``)
        - hx: the state, one ``[num_layers * D, B, H]`` tensor per name in
          :attr:`state_names` (``h`` is ``W`` wide), layers then directions as torch.nn:
          a tensor for GRU/RNN (``h``), a tuple ``(h_0, c_0)`` for LSTMs, and
          ``(h_0, c_0, o_0)`` under a scheme whose output gate carries over steps
          (Krueger's ``output-zoneout``; ``(h_0, c_0)`` alone starts the gate afresh)
        - output: ``[T, B, D * W]`` (``[B, T, D * W]`` with ``batch_first``), h_n like hx (all of
          :attr:`state_names`)
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 scheme: "Scheme | str | None" = None, batch_first: bool = False,
                 nonlinearity: str = "tanh", bias: bool = True, path: str = "auto", *,
                 applied_outside: Sequence[str] = (), bidirectional: bool = False,
                 proj_size: int = 0, device: "torch.device | str | None" = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        validate.device("Recurrent", device)
        validate.float_dtype("Recurrent", dtype)
        self.cell: CellSpec = get_cell(cell)
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            validate.integer("Recurrent", name, v)
        validate.choice("Recurrent", "nonlinearity", nonlinearity, NONLINEARITIES)
        if nonlinearity not in self.cell.nonlinearities:
            raise ValueError(f"nonlinearity={nonlinearity!r} does not apply to the {cell} cell "
                             f"(it takes {', '.join(self.cell.nonlinearities)})")
        validate.choice("Recurrent", "path", path, PATHS)
        validate.flag("Recurrent", "bidirectional", bidirectional)
        if not isinstance(proj_size, int) or isinstance(proj_size, bool) or proj_size < 0:
            raise ValueError(f"proj_size must be an integer >= 0, got {proj_size!r}")
        if proj_size and proj_size >= hidden_size:
            raise ValueError(f"proj_size={proj_size} must be smaller than hidden_size="
                             f"{hidden_size}")
        if proj_size and (self.cell.native != "LSTM" or self.cell.params != TORCH_PARAMS):
            raise ValueError(f"proj_size applies to the lstm cell only, not {cell!r}")
        self.bidirectional, self.proj_size = bidirectional, proj_size
        self.num_directions = 2 if bidirectional else 1
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
        self.sites: dict[str, SiteSpec] = _layer_sites(sites)
        inside = sorted(set(self.sites) & recurrence_sites())
        if proj_size and inside:
            raise ValueError(f"proj_size={proj_size} cannot run scheme {self.scheme.spec!r}: its "
                             f"masks at {inside} act inside the recurrence, which a projected "
                             "LSTM does not support; use proj_size=0 or a scheme acting outside "
                             "it (zaremba, torch-dropout, weight-drop, gal with p_recurrent=0)")
        if proj_size and getattr(self.sites.get("input"), "per_gate", False):
            raise ValueError("proj_size does not support per-gate input masks (gal with "
                             "tied=false); use tied=true")
        #: the recurrent state, in ``hx``/``h_n`` order
        self.state_names: tuple[str, ...] = self.cell.state_names(tuple(self.sites))
        self._plan = self._make_plan()
        G, W = self.cell.num_gates, self.out_width
        for k in range(num_layers):
            I = input_size if k == 0 else W * self.num_directions
            for tag in self.layer_tags(k):
                for spec in self.cell.params:
                    if spec.bias and not bias:
                        continue
                    shape = spec.shape(G, I, hidden_size)
                    if proj_size and spec.name == "weight_hh":
                        shape = (G * hidden_size, proj_size)
                    self.register_parameter(f"{spec.name}_{tag}", nn.Parameter(
                        torch.empty(shape, device=device, dtype=dtype)))
                if proj_size:
                    self.register_parameter(f"weight_hr_{tag}", nn.Parameter(
                        torch.empty(proj_size, hidden_size, device=device, dtype=dtype)))
        self.reset_parameters()

    @property
    def out_width(self) -> int:
        """Features of ``h`` and of each direction's output: proj_size or hidden_size."""
        return self.proj_size or self.hidden_size

    def layer_tags(self, k: int) -> tuple[str, ...]:
        """The name suffixes of layer ``k``'s directions: ``l{k}`` (and ``l{k}_reverse``)."""
        return (f"l{k}", f"l{k}_reverse")[:self.num_directions]

    def reset_parameters(self, init_range: float | None = None) -> None:
        """Weights and biases uniform(-r, r), ``r = 1/sqrt(H)`` as torch.nn unless
        ``init_range`` is given; normalization gains 1 and shifts 0."""
        r = init_range if init_range is not None else 1.0 / math.sqrt(self.hidden_size)
        init = {spec.name: spec.init for spec in self.cell.params}
        for name, p in self.named_parameters():
            kind = init.get(re.sub(r"_l\d+(_reverse)?$", "", name), "uniform")
            if kind == "uniform":
                nn.init.uniform_(p, -r, r)
            else:
                nn.init.constant_(p, 1.0 if kind == "ones" else 0.0)

    def layer_params(self, k: int, direction: int = 0) -> dict[str, Tensor]:
        """Layer ``k``'s parameters (of ``direction`` 1: the reverse one) by their cell name
        (``weight_ih``, ...; ``weight_hr`` with a projection)."""
        tag = self.layer_tags(k)[direction]
        out = {}
        for name in [spec.name for spec in self.cell.params] + ["weight_hr"]:
            p = getattr(self, f"{name}_{tag}", None)
            if p is not None:
                out[name] = p
        return out

    # --- masks ---------------------------------------------------------------------------
    def mask_plan(self) -> MaskPlan:
        """The masks this layer's scheme needs, keyed ``l{k}.{site}`` and ``output`` (fixed
        by the scheme, the cell and the sizes; built once)."""
        return self._plan

    def _make_plan(self) -> MaskPlan:
        G, H = self.cell.num_gates, self.hidden_size
        Y = self.out_width * self.num_directions  # features of a layer's output
        entries: list[MaskEntry] = []
        for k in range(self.num_layers):
            I = self.input_size if k == 0 else Y
            if k and "between" in self.sites:
                spec = self.sites["between"]
                entries.append(MaskEntry(f"l{k}.between", spec, mask_shape("between", spec, G, Y, Y)))
            for tag in self.layer_tags(k):
                for site in layer_sites():
                    spec = self.sites.get(site)
                    if spec is not None:
                        shape = mask_shape(site, spec, G, I, H)
                        if site == "weight" and self.proj_size:
                            shape = (G * H, self.proj_size)
                        entries.append(MaskEntry(f"{tag}.{site}", spec, shape))
        if "output" in self.sites:
            spec = self.sites["output"]
            entries.append(MaskEntry("output", spec, mask_shape("output", spec, G, Y, Y)))
        return MaskPlan(tuple(entries))

    def chosen_path(self, device: torch.device | None = None) -> str:
        """The path ``forward`` takes in eager mode (``auto`` resolved): ``"native"``,
        ``"fused"`` or ``"reference"``. Record it in run configs; ``device`` is reserved for
        device-dependent choices (all three paths run on CPU and CUDA). While the model is
        traced (compile, export, jit.trace, torch.func) it runs the reference loop."""
        if self.proj_size:  # native or the reference loop: the fused path has no projection
            return "reference" if self.path == "reference" else "native"
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
        LD = self.num_layers * self.num_directions
        wants = [(LD, B, self.out_width if n == "h" else self.hidden_size) for n in names]
        own = len(self.cell.state)
        if hx is None:
            return [x.new_zeros(w) for w in wants[:own]] + [None] * (len(names) - own)
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
        what = "num_layers * num_directions" if self.bidirectional else "num_layers"
        for name, s, want in zip(names, given, wants):
            if not isinstance(s, Tensor) and s is not None:
                raise ValueError(f"{name}_0 must be a tensor, got {type(s).__name__}")
            if s is not None and tuple(s.shape) != want:
                width = "proj_size" if self.proj_size and name == "h" else "hidden_size"
                raise ValueError(f"{name}_0 has shape {tuple(s.shape)}, expected {want} "
                                 f"[{what}, B, {width}]")
        return given

    def resolve_masks(self, T: int, B: int, *, masks: Mapping[str, Tensor] | None,
                      stochastic: bool | None, generator: torch.Generator | None,
                      device: torch.device, dtype: torch.dtype,
                      plan: MaskPlan | None = None) -> ResolvedMasks:
        """The masks of one forward, once: the given ones validated and moved to ``device``
        and ``dtype``, or sampled (``stochastic``, default ``self.training``), or their
        expectations. ``plan`` defaults to this layer's (a Net passes its own, which adds
        the embedding)."""
        validate.optional(validate.flag, "forward", "stochastic", stochastic)
        validate.generator("forward", generator)
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
        if self.proj_size:
            return path
        # a path given as "native" (auto picks it only where eligible)
        if self.path == "native" and not native_eligible(self.sites, self.cell):
            inside = sorted(set(self.sites) & recurrence_sites())
            why = (f"it has masks inside the recurrence ({inside})" if inside else
                   f"torch.nn has no {self.cell.name} module" if self.cell.native is None
                   else "its input masks are per gate")
            raise ValueError(f"path='native' cannot run scheme {self.scheme.spec!r} on a "
                             f"{self.cell.name} cell: {why}; use path='reference' or 'auto'")
        return path

    def forward(self, input: Tensor, hx: "Tensor | Sequence[Tensor] | None" = None, *,
                lengths: "Tensor | Sequence[int] | None" = None,
                masks: Mapping[str, Tensor] | None = None, stochastic: bool | None = None,
                generator: torch.Generator | None = None
                ) -> tuple[Tensor, "Tensor | tuple[Tensor, ...]"]:
        """Run the stack. ``lengths`` (``[B]`` integers in any order) marks a padded batch
        of variable-length sequences: each stops at its length. ``masks`` (from
        ``mask_plan().sample``) replays exact masks; otherwise masks are sampled when
        ``stochastic`` (default: ``self.training``) and replaced by their expectation when
        not. Under CPU/CUDA autocast the layer computes in the autocast dtype and returns
        outputs and states in it (as ``nn.LSTM`` does)."""
        check_call(input, hx, masks, self.weight_ih_l0, 1 if self.batch_first else 0)
        self._check_input(input)
        x = input.transpose(0, 1) if self.batch_first else input
        T, B = x.shape[0], x.shape[1]
        lens = check_lengths(lengths, T, B)
        if isinstance(masks, ResolvedMasks):  # resolved by the caller (a Net) for this forward
            m: Masks = masks
        else:
            m = self.resolve_masks(T, B, masks=masks, stochastic=stochastic, generator=generator,
                                   device=x.device, dtype=x.dtype)
        state0 = self._initial_state(hx, B, x)
        path = self._run_path()
        run = PROJECTED_RUNS[path] if self.proj_size else LAYER_RUNS[path]
        D = self.num_directions
        params = [self.layer_params(k, d) for k in range(self.num_layers) for d in range(D)]
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
                if f"l{k}.between" in m:
                    x = x * m[f"l{k}.between"]
                outs = []
                for d, tag in enumerate(self.layer_tags(k)):
                    j = k * D + d
                    xd = reverse_within(x, lens) if d else x
                    y, st = run_lengths(run, self.cell, xd,
                                        tuple(None if s is None else s[j] for s in state0),
                                        params[j], self._plan.layer(m, tag), self.nonlinearity,
                                        lens)
                    outs.append(reverse_within(y, lens) if d else y)
                    finals.append(st)
                x = torch.cat(outs, -1) if D > 1 else outs[0]
            if "output" in m:
                x = zero_pads(x * m["output"], lens)
        out = x.transpose(0, 1) if self.batch_first else x
        h_n = tuple(torch.stack([f[i] for f in finals]) for i in range(len(self.state_names)))
        return out, (h_n if len(h_n) > 1 else h_n[0])

    # --- pickling: plain data, so torch.load(weights_only=True) reads a saved model ------
    def __getstate__(self) -> dict:
        """The module's state with the cell and the scheme by name and text form and the
        sites and mask plan left out (derived again on load): plain data that
        ``torch.load(..., weights_only=True)`` accepts. A cell or scheme that its name or
        text does not rebuild (not registered) is kept as the object."""
        state = dict(self.__dict__)
        if get_cell(self.cell.name) is self.cell:
            state["cell"] = self.cell.name
        if parse_scheme(self.scheme.spec) == self.scheme:
            state["scheme"] = self.scheme.spec
        del state["sites"], state["_plan"]
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        if isinstance(state.get("cell"), str):
            state["cell"] = get_cell(state["cell"])
        if isinstance(state.get("scheme"), str):
            state["scheme"] = parse_scheme(state["scheme"])
        super().__setstate__(state)
        if "_plan" not in state:
            self.sites = _layer_sites(self.scheme.sites(self.cell))
            self._plan = self._make_plan()

    def extra_repr(self) -> str:
        extra = (", bidirectional=True" if self.bidirectional else "") + \
            (f", proj_size={self.proj_size}" if self.proj_size else "")
        return (f"{self.cell.name}, {self.input_size}, {self.hidden_size}, "
                f"num_layers={self.num_layers}{extra}, scheme={self.scheme.spec!r}, "
                f"path={self.path!r}, chosen_path={self.chosen_path()!r}")


# A saved whole model holding this layer loads under torch.load's default weights_only=True
# (its pickled state is plain data, see Recurrent.__getstate__).
if hasattr(torch.serialization, "add_safe_globals"):  # torch >= 2.4
    torch.serialization.add_safe_globals([Recurrent])

