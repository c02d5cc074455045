"""What a cell is, as data: its step function, gate layout, parameters and state layout.

A cell is a :class:`CellSpec` registered in :data:`CELLS`. Its ``step`` is the one place
its equations are written: the pre-activations of one time step and the previous state
in, the new state out, with the masks of the step's sites (:func:`memloss.models.sites.step_sites`)
applied where the papers put them. Everything else is derived from the spec: the layer's
parameters, the reference path (the step in a loop), the fused path (the step traced and
compiled, its backward the vector-Jacobian product of the same step) and the native path
(``torch.nn``'s kernel, for cells that have one and schemes with no mask in the step).

Conventions of every step:

* ``pre``: a 1-tuple ``(a,)`` with ``a = x~_t W_ih^T + h~_{t-1} W_hh^T + b`` for a
  ``joint`` cell, else ``(x_t part, recurrent part)`` (e.g. the GRU, whose reset gate
  multiplies the recurrent part). Each is ``[B, G*H]`` in the order of ``gates``.
* ``state``: the cell's ``state`` (h first: the output), then the states its sites carry
  (:func:`memloss.models.sites.carried_states`, e.g. the output gate of Krueger 3.3); a
  carried state is ``None`` at the start of a sequence that has none.
* ``m``: the masks of this step by site name (a missing site has no mask); ``p``: the
  parameters named in ``step_params``; ``nonlinearity``: the layer's (vanilla RNN).
* ``record``: None on every execution path (so traced and compiled steps see no call);
  the probes pass a function and the step calls ``record(name, value)`` once per
  :class:`Activation` it declares, with the value as the step computed it ([B, H]).

What the probes read of a cell is declared here, never inferred from its name: its
``activations`` (which values lie in [0, 1] as gates, which are tanh candidates), its
``memory`` (the state that carries memory, the gate that keeps it, the site that drops it)
and its ``state`` layout.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Mapping, Optional, Protocol

from torch import Tensor

from memloss.core.registry import Registry

from ..sites import SITES, carried_states

__all__ = ["CellSpec", "ParamSpec", "Step", "Record", "Activation", "Memory", "CELLS",
           "register_cell", "get_cell", "list_cells", "native_cells", "NONLINEARITIES",
           "TORCH_PARAMS", "NATIVE_MODULES", "drop", "zone", "emit"]

NONLINEARITIES = ("tanh", "relu")
#: the torch.nn modules whose kernels the native path runs (a cell's ``native``)
NATIVE_MODULES = ("LSTM", "GRU", "RNN")
#: the range of each squashing function (None: unbounded)
BOUNDS: dict[str, tuple[float, float] | None] = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0),
                                                 "relu": None}

Pre = tuple[Tensor, ...]
State = tuple[Optional[Tensor], ...]
StepMasks = Mapping[str, Tensor]
Params = Mapping[str, Tensor]
#: what a step reports its activations to: ``record(name, value)``
Record = Callable[[str, Tensor], None]


class Step(Protocol):
    def __call__(self, pre: Pre, state: State, m: StepMasks, p: Params,
                 nonlinearity: str = "tanh", record: Record | None = None
                 ) -> tuple[Tensor, ...]: ...


@dataclass(frozen=True)
class Activation:
    """A value the step reports with ``record(name, value)`` at every step.

    ``name``: the key it is recorded under (the name of its block in ``CellSpec.gates`` when
    it has one; a coupled gate such as ``f = 1 - i`` has none); ``label``: its name in
    words, as probes report it (``forget``); ``squash``: the function that makes it:
    ``sigmoid`` (a gate, in [0, 1]), ``tanh`` (a candidate, in [-1, 1]) or ``nonlinearity``
    (the layer's own: tanh or relu, vanilla RNN).
    """

    name: str
    label: str
    squash: Literal["sigmoid", "tanh", "nonlinearity"]

    @property
    def is_gate(self) -> bool:
        """A gate: a sigmoid, so its value lies in [0, 1]."""
        return self.squash == "sigmoid"

    def bounds(self, nonlinearity: str = "tanh") -> tuple[float, float] | None:
        """The interval its values lie in (None: unbounded, e.g. a relu RNN)."""
        return BOUNDS[nonlinearity if self.squash == "nonlinearity" else self.squash]


@dataclass(frozen=True)
class Memory:
    """How a gated cell keeps its memory from step to step (Semeniuta 3.2).

    ``state``: the state that carries it (``c``; ``h`` for a GRU). ``gate``: the recorded
    gate that scales the previous ``state`` in the new one; ``kept``: the share of the
    previous state kept is the gate's value (``gate``: LSTM ``f``, torch's GRU ``z`` in
    ``h = (1 - z) n + z h_{t-1}``) or one minus it (``complement``). ``site``: the dropout
    site that drops the new ``state`` itself (Semeniuta eq. 17: ``cell`` for the LSTM,
    ``hidden`` for the GRU); the site dropping only the update is ``update`` (eq. 19).
    A cell without a Memory overwrites its state at every step (vanilla RNN).
    """

    state: str
    gate: str
    site: str
    kept: Literal["gate", "complement"] = "gate"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a layer, registered as ``{name}_l{k}``.

    Shape: ``rows`` is ``gates`` (G*H) or ``hidden`` (H); ``cols`` is ``input``, ``hidden``
    or None (a vector). ``init``: ``uniform`` (U(-r, r), r = 1/sqrt(H) or the layer's
    ``init_range``), ``ones`` or ``zeros``. ``bias``: left out when the layer has
    ``bias=False``.
    """

    name: str
    rows: Literal["gates", "hidden"]
    cols: Literal["input", "hidden"] | None = None
    init: Literal["uniform", "ones", "zeros"] = "uniform"
    bias: bool = False

    def shape(self, gates: int, input_size: int, hidden_size: int) -> tuple[int, ...]:
        n = gates * hidden_size if self.rows == "gates" else hidden_size
        if self.cols is None:
            return (n,)
        return (n, input_size if self.cols == "input" else hidden_size)


#: the parameters of torch.nn.LSTM/GRU/RNN (same names, so their state dicts load)
TORCH_PARAMS = (ParamSpec("weight_ih", "gates", "input"), ParamSpec("weight_hh", "gates", "hidden"),
                ParamSpec("bias_ih", "gates", bias=True), ParamSpec("bias_hh", "gates", bias=True))


@dataclass(frozen=True)
class CellSpec:
    """A cell: its step and everything a layer needs to build and run it.

    ``gates``: the H-wide blocks of the gate weights, in order (torch.nn order for the cells
    torch has). ``state``: the cell's own state, h first. ``features``: what the step has
    beyond an input, a recurrent product and a hidden state (``cell``, ``update``,
    ``output_gate``), which decides the sites it offers. ``params``: its parameters
    (``weight_ih`` and ``weight_hh`` are the two products' weights). ``joint``: the step
    takes the sum of the input and recurrent pre-activations. ``input_bias``: parameters
    added to the input product, ``recurrent_bias``: one added to the recurrent product;
    ``project``: instead of ``input_bias``, a function of ``x W_ih^T`` and the parameters
    giving the step's input pre-activations (all steps at once). ``step_params``: the
    parameters the step reads. ``native``: the ``torch.nn`` module running this cell when
    no mask acts in the recurrence (None: no such module); every map between torch modules
    and cells reads it (:func:`native_cells`). ``activations``: what the step records
    (:class:`Activation`), in the order it records them. ``memory``: how it keeps its state
    (:class:`Memory`; None: it overwrites it).
    """

    name: str
    gates: tuple[str, ...]
    state: tuple[str, ...]
    features: frozenset[str]
    step: Step
    description: str
    params: tuple[ParamSpec, ...] = TORCH_PARAMS
    joint: bool = True
    input_bias: tuple[str, ...] = ("bias_ih", "bias_hh")
    recurrent_bias: str | None = None
    project: Callable[[Tensor, Params], Tensor] | None = None
    step_params: tuple[str, ...] = ()
    native: str | None = None
    nonlinearities: tuple[str, ...] = ("tanh",)
    activations: tuple[Activation, ...] = ()
    memory: Memory | None = None

    def __post_init__(self) -> None:
        names = {p.name for p in self.params}
        missing = ({"weight_ih", "weight_hh"} | set(self.input_bias) | set(self.step_params)
                   | ({self.recurrent_bias} - {None})) - names
        if missing:
            raise ValueError(f"cell {self.name!r} names parameters it does not declare: "
                             f"{sorted(missing)}")
        if self.joint and self.recurrent_bias is not None:
            raise ValueError(f"cell {self.name!r}: a joint step has its biases in the input "
                             "product; recurrent_bias is for cells with separate parts")
        if self.state[:1] != ("h",):
            raise ValueError(f"cell {self.name!r}: the first state must be 'h' (the output)")
        if self.native is not None and self.native not in NATIVE_MODULES:
            raise ValueError(f"cell {self.name!r}: native={self.native!r} is not a torch.nn "
                             "module the native path runs; use one of "
                             f"{', '.join(NATIVE_MODULES)} or None")
        names = [a.name for a in self.activations]
        if len(set(names)) != len(names):
            raise ValueError(f"cell {self.name!r}: activations record one name twice: {names}")
        mem = self.memory
        if mem is not None:
            gate = next((a for a in self.activations if a.name == mem.gate), None)
            if mem.state not in self.state or gate is None or not gate.is_gate \
                    or mem.site not in self.sites:
                raise ValueError(
                    f"cell {self.name!r}: memory {mem} must name one of its states "
                    f"{self.state}, one of its sigmoid activations and one of its sites "
                    f"{self.sites}")

    def activation(self, name: str) -> Activation:
        """The declared activation recorded as ``name``."""
        for a in self.activations:
            if a.name == name:
                return a
        raise KeyError(f"cell {self.name!r} records no activation {name!r}")

    @property
    def gate_activations(self) -> tuple[Activation, ...]:
        """The activations that are gates (in [0, 1])."""
        return tuple(a for a in self.activations if a.is_gate)

    @property
    def num_gates(self) -> int:
        return len(self.gates)

    @property
    def has_cell(self) -> bool:
        return "cell" in self.features

    @property
    def sites(self) -> tuple[str, ...]:
        """The mask sites this cell offers, in step order."""
        return tuple(n for n in SITES if SITES.get(n).needs in (None, *self.features))

    def state_names(self, sites: Mapping[str, object] | tuple[str, ...] = ()) -> tuple[str, ...]:
        """The recurrent state under the given sites: the cell's own, then the carried ones."""
        return self.state + carried_states(sites)

    def gate_slice(self, gate: str, hidden_size: int) -> slice:
        """The rows of a gate block in the gate weights and biases."""
        k = self.gates.index(gate)
        return slice(k * hidden_size, (k + 1) * hidden_size)


CELLS: Registry[CellSpec] = Registry("cell")


def register_cell(spec: CellSpec) -> CellSpec:
    """Add a cell to :data:`CELLS` (the one line a new cell adds besides its spec)."""
    return CELLS.register(spec.name, spec.description)(spec)


def get_cell(name: str) -> CellSpec:
    return CELLS.get(name)


def list_cells() -> list[str]:
    return CELLS.list()


def native_cells() -> dict[str, CellSpec]:
    """The cells ``torch.nn`` has a module for, by that module's name (``"LSTM"``: the lstm
    cell), from each cell's ``native``: the one map between torch modules and cells."""
    return {spec.native: spec for n in CELLS.list() if (spec := CELLS.get(n)).native}


# --- the site equations every step shares ------------------------------------------------
def drop(x: Tensor, m: Tensor | None) -> Tensor:
    """A dropout site: ``x * m`` (``m`` a sampled mask with its scaling, or its expectation)."""
    return x if m is None else x * m


def zone(z: Tensor | None, prev: Tensor, new: Tensor) -> Tensor:
    """A zoneout site: keep ``prev`` where ``z`` is 1, ``new + z (prev - new)`` (``z`` may be
    an expectation)."""
    return new if z is None else new + z * (prev - new)


def emit(h_hat: Tensor, h_prev: Tensor, m: StepMasks) -> Tensor:
    """The new hidden state from its candidate: the ``hidden`` dropout site, then
    ``zoneout_hidden`` (Krueger: ``h_t = z h_{t-1} + (1 - z) h^``)."""
    return zone(m.get("zoneout_hidden"), h_prev, drop(h_hat, m.get("hidden")))
