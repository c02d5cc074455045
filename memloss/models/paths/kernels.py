"""Step kernels derived from a cell's step function: no equation is written here.

For one layout of a step's inputs (which masks, their shapes, dtype, device) this module
splits ``cell.step`` into a forward and a backward graph (:func:`step_plan`: AOT autograd's
joint trace of the step and its vector-Jacobian product, partitioned so that the backward
recomputes nothing: it reads the gate activations and the other values the forward
computed, as ``torch.nn.LSTM`` keeps its gates), traces three functions of plain tensors
around them with ``make_fx`` and compiles them with TorchInductor (C++ on CPU, Triton on
CUDA):

* inference: ``cell.step`` on the step's pre-activations, previous state and masks, the
  new state written into the caller's buffers (and ``h_t m_rec,t+1``, the next product's
  input, when the recurrent site has a sampled mask: ``[B, H]`` tied, ``[B, G, H]`` one
  per gate block);
* forward (training): the same, and the values the backward reads written into per-step
  save buffers (those that are not already a step input or the new state);
* backward: the backward graph on those values, after summing the three gradients that
  reach ``h_t`` (through the next step's state, its recurrent product, and the output);
  the gradients of the pre-activations and of the previous state are written into the
  caller's buffers, those of the step's parameters returned.

Writing into buffers lets Inductor store results straight into the sequence's tensors
(no per-step copies). Whether and how to compile: :data:`COMPILE` (env ``MEMLOSS_COMPILE``):

* ``auto`` (default): steps of at least :data:`MIN_COMPILE_ELEMENTS` gate values
  (``B * G*H``) are compiled in the background: a separate compiler process (one per
  process, started with the first kernel, at a lower priority) traces and compiles each
  kernel into the kernel cache, then a background thread here loads it from that cache
  (cheap) and switches the layer to it. Until a kernel is ready the layer runs the step
  function eagerly (same results), so the first training step does not wait for the
  compiler, and the compiler's work does not hold this interpreter's lock. Where the
  compiler process cannot start or dies, the thread compiles instead (one WARNING line).
  One INFO line says what happens when the first compile starts;
* ``always``: trace and compile on first use, before the step runs (benchmarks, tests);
* ``never``: trace only; the traced graphs run op by op.

Compiled kernels are kept in memory per layout and on disk in Inductor's cache, which this
module points at a per-user folder (:func:`kernel_cache_dir`: ``$MEMLOSS_KERNEL_CACHE``, else
a ``TORCHINDUCTOR_CACHE_DIR`` the user set, else ``$XDG_CACHE_HOME/memloss/inductor`` or
``~/.cache/memloss/inductor``), so a later process, and every job of a sweep on the same
machine, loads them instead of compiling. :func:`compile_stats` reports the time spent.

``torch.fx``'s tracer and Inductor (and with them sympy) are imported on the first trace,
not with this module.
"""
from __future__ import annotations

import functools
import importlib
import logging
import operator
import os
import pickle
import queue
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ..cells import CellSpec

__all__ = ["Layout", "Kernel", "StepPlan", "step_plan", "inference_kernel", "forward_kernel",
           "backward_kernel", "compiled_kernels",
           "COMPILE", "MIN_COMPILE_ELEMENTS", "COMPILE_SECONDS", "CACHE_ENV", "clear_cache",
           "compile_stats", "kernel_cache_dir", "wait_compiled", "COMPILER_PROCESS",
           "COMPILER_NICE"]

log = logging.getLogger(__name__)

#: ``auto`` | ``always`` | ``never``: whether and when step kernels are compiled
COMPILE: str = os.environ.get("MEMLOSS_COMPILE", "auto")
#: steps with fewer gate values (B * G*H) run their traced graph op by op under ``auto``
#: (e.g. the tests' tiny layers); B=20, H=64 LSTM steps (5120) are compiled
MIN_COMPILE_ELEMENTS = 4096
#: seconds spent tracing and compiling step kernels in this process, by kind (the
#: ``compile`` part runs in the background under ``auto``)
COMPILE_SECONDS: dict[str, float] = {"trace": 0.0, "compile": 0.0, "process": 0.0}
#: under ``auto``, compile in a separate process (False: in the background thread itself,
#: which shares this interpreter's lock with training)
COMPILER_PROCESS: bool = True
#: how much lower the compiler process's scheduling priority is (``os.nice``), so that on a
#: busy machine it yields to training
COMPILER_NICE = 10
#: seconds the compiler process may take for one kernel before it is given up (killed; the
#: kernel is then compiled in this process's background thread): an empty cache costs 5-20 s
#: of CPU a kernel, so only a hung or starved process reaches it
COMPILER_TIMEOUT = 600.0
#: the environment variable naming the kernel cache folder (overrides everything else)
CACHE_ENV = "MEMLOSS_KERNEL_CACHE"

_cache: dict[tuple, "Kernel"] = {}
_compile_broken: list[str] = []
_lock = threading.Lock()
_jobs: "queue.Queue[Kernel]" = queue.Queue()
_worker: list[threading.Thread] = []
_announced: list[bool] = []
#: the compiler process (started with the first background compile), or a reason it is not
#: used
_child: list["_Compiler"] = []
_child_broken: list[str] = []


#: the user's own ``TORCHINDUCTOR_CACHE_DIR``, read before torch can set it: tracing imports
#: Inductor, which writes its default (a folder of the system's temporary folder) into the
#: environment, and that default is not the user's choice
_USER_INDUCTOR_DIR = os.environ.get("TORCHINDUCTOR_CACHE_DIR")


def _after_fork_in_child() -> None:
    """Start afresh in a forked child (a DataLoader worker, a process pool, a test harness):
    it copies this process's memory but only the forking thread, so the lock may be held by
    a thread it does not have, the background worker and its queue are gone, and the
    compiler process's pipes belong to the parent. New lock and queue, no worker, no
    compiler process; a kernel whose compile was pending keeps its step function
    (uncompiled, same results) instead of waiting for a compile that will never end."""
    global _lock, _jobs
    _lock = threading.Lock()
    _jobs = queue.Queue()
    _worker.clear()
    _child.clear()
    for k in list(_cache.values()):
        k.pending = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def kernel_cache_dir() -> Path:
    """Where compiled kernels are kept across processes: ``$MEMLOSS_KERNEL_CACHE``, else a
    ``TORCHINDUCTOR_CACHE_DIR`` the user set, else ``$XDG_CACHE_HOME/memloss/inductor``
    (``~/.cache/memloss/inductor``)."""
    env = os.environ.get(CACHE_ENV) or _USER_INDUCTOR_DIR
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "memloss" / "inductor"


def _use_cache_dir() -> Path:
    """Point Inductor's disk cache at :func:`kernel_cache_dir` (before its first compile)."""
    path = kernel_cache_dir()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    return path


@dataclass(frozen=True)
class Layout:
    """Which inputs a step kernel takes, in order (all tensors): ``n_pre`` pre-activations,
    the previous state (``present[k]``: state ``k`` is given; a carried state is absent at the
    start of a sequence), the masks of ``sites``, the step parameters ``params``, and whether
    the next step's recurrent mask is passed (``next_rec``: tied ``[B, H]`` or 0-dim, or
    ``[B, G, H]`` one per gate block)."""

    n_pre: int
    present: tuple[bool, ...]
    sites: tuple[str, ...]
    params: tuple[str, ...]
    next_rec: bool

    def split(self, args: Sequence[Any]) -> tuple[tuple, tuple, dict, dict, Any, int]:
        """The step's arguments from a kernel's: (pre, state, masks, params, the next
        step's recurrent mask or None, the index of the kernel's next argument)."""
        i = self.n_pre
        pre = tuple(args[:i])
        state: list[Tensor | None] = []
        for given in self.present:
            state.append(args[i] if given else None)
            i += given
        m = dict(zip(self.sites, args[i:i + len(self.sites)]))
        i += len(self.sites)
        i += len(self.params)
        p = dict(zip(self.params, args[i - len(self.params):i]))
        m_next = args[i] if self.next_rec else None
        return pre, tuple(state), m, p, m_next, i + self.next_rec


def _step_inputs(lay: Layout, args: Sequence[Any]) -> tuple[list, int]:
    """The step's own inputs among a kernel's arguments (pre-activations, given previous
    states, masks, parameters), and the index of the kernel's next argument."""
    n = lay.n_pre + sum(lay.present) + len(lay.sites) + len(lay.params)
    return list(args[:n]), n + lay.next_rec


def _pure_step(cell: CellSpec, nonlinearity: str, lay: Layout) -> Callable[..., tuple]:
    """``cell.step`` as a function of its tensors in kernel order (no ``m_next``)."""
    plain = replace(lay, next_rec=False)

    def step(*xs: Tensor) -> tuple:
        pre, state, m, p, _, _ = plain.split(xs)
        return tuple(cell.step(pre, state, m, p, nonlinearity))

    return step


@dataclass(frozen=True)
class StepPlan:
    """The step split into a forward graph that also returns what the backward reads, and a
    backward graph that reads it (AOT autograd's joint trace, partitioned so that nothing is
    recomputed): nothing is written here but where each saved value is kept.

    ``fw(*inputs)`` returns the new state, then the saved values; ``bw(*saved, *d_new_state)``
    returns one gradient per input (None for the masks and for inputs the step does not
    differentiate through). ``saved[j]`` says where the backward kernel finds the ``j``-th
    saved value: ``("input", i)`` the step's ``i``-th input, ``("state", k)`` the new state
    ``k``, ``("buffer", b)`` the ``b``-th save buffer, which the forward kernel fills from
    ``fw``'s output ``sources[b]``. ``buffers[b]``: its shape and dtype (one step's). (One
    flat buffer per step for all of them, sliced inside the kernels, made Inductor's
    forward kernel slower: 37 against 25 us a call at H = 64, B = 32.)"""

    fw: Any
    bw: Any
    n_pre: int
    n_state: int
    saved: tuple[tuple[str, int], ...]
    sources: tuple[int, ...]
    buffers: tuple[tuple[tuple[int, ...], torch.dtype], ...]

    @property
    def reads_pre(self) -> bool:
        """Whether the backward reads a pre-activation (else its buffer may take the
        pre-activations' gradient)."""
        return any(w == "input" and i < self.n_pre for w, i in self.saved)


_plans: dict[tuple, StepPlan] = {}


def _derive_plan(cell: CellSpec, nonlinearity: str, lay: Layout,
                 inputs: Sequence[Tensor]) -> StepPlan:
    import warnings

    from torch._functorch.aot_autograd import aot_function
    from torch._functorch.partitioners import default_partition

    graphs: dict[str, Any] = {}

    def keep(name: str) -> Callable[[Any, Any], Any]:
        def compiler(gm: Any, example: Any) -> Any:
            graphs[name] = gm
            return gm
        return compiler

    n_pre, n_given, n_m = lay.n_pre, sum(lay.present), len(lay.sites)
    grad = [i < n_pre + n_given or i >= n_pre + n_given + n_m for i in range(len(inputs))]
    xs = [torch.zeros(t.shape, dtype=t.dtype, device=t.device).requires_grad_(g)
          for t, g in zip(inputs, grad)]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "doesn't take boxed arguments": called here only
        joint = aot_function(_pure_step(cell, nonlinearity, lay), fw_compiler=keep("fw"),
                             bw_compiler=keep("bw"), partition_fn=default_partition)
        with torch.enable_grad():
            outs = joint(*xs)
            torch.autograd.backward(outs, [torch.zeros_like(o) for o in outs])
    COMPILE_SECONDS["trace"] += time.perf_counter() - t0
    fw, bw = graphs["fw"], graphs["bw"]
    n_state = len(outs)
    fw_out = list(fw.graph.output_node().args[0])
    bw_in = [n for n in bw.graph.nodes if n.op == "placeholder"]
    n_tangents = sum(n.name.startswith("tangents") for n in bw_in)
    n_saved = len(bw_in) - n_tangents
    if n_tangents != n_state or len(fw_out) != n_state + n_saved:
        raise RuntimeError(f"the {cell.name} step's partitioned graphs do not have the form "
                           f"the fused path expects ({len(fw_out)} forward outputs, "
                           f"{n_saved} saved, {n_tangents} tangents, {n_state} states)")
    placeholders = [n for n in fw.graph.nodes if n.op == "placeholder"]
    saved: list[tuple[str, int]] = []
    sources: list[int] = []
    buffers: list[tuple[tuple[int, ...], torch.dtype]] = []
    where: dict[Any, tuple[str, int]] = {}
    for j, node in enumerate(fw_out[n_state:]):
        src = node
        while src.op == "call_function" and src.target is torch.ops.aten.detach.default:
            src = src.args[0]  # the same values (aliases): kept once
        if src not in where:
            if src.op == "placeholder":
                where[src] = ("input", placeholders.index(src))
            elif src in fw_out[:n_state]:
                where[src] = ("state", fw_out.index(src))
            else:
                val = src.meta["val"]
                where[src] = ("buffer", len(buffers))
                sources.append(n_state + j)
                buffers.append((tuple(val.shape), val.dtype))
        saved.append(where[src])
    return StepPlan(fw, bw, n_pre, n_state, tuple(saved), tuple(sources), tuple(buffers))


def step_plan(cell: CellSpec, nonlinearity: str, lay: Layout,
              inputs: Sequence[Tensor]) -> StepPlan:
    """The partitioned step of a layout for step inputs laid out like ``inputs`` (the
    kernels' first arguments: pre-activations, given previous states, masks, parameters);
    cached. Its ``buffers`` are what the caller keeps per step for the backward."""
    key = (cell.name, nonlinearity, lay, tuple(_key(t) for t in inputs))
    plan = _plans.get(key)
    if plan is None:
        # under the tracing lock: tracing tools keep global state (fx's node-meta flag), so
        # a trace here must not overlap a background compile's
        with _lock:
            plan = _plans.get(key)
            if plan is None:
                plan = _plans[key] = _derive_plan(cell, nonlinearity, lay, inputs)
    return plan


def _write_new_state(lay: Layout, args: Sequence[Tensor], i: int, new: Sequence[Tensor]) -> int:
    """Write a step's new state into its buffers (``args[i:]``) and, under a sampled
    recurrent mask, ``h_t m_rec,t+1`` (``[B, H]``, or ``[B, G, H]`` one per gate block) into
    the buffer after them; the index of the kernel's next argument."""
    n_state = len(lay.present)
    for buf, value in zip(args[i:i + n_state], new):
        buf.copy_(value)
    if not lay.next_rec:
        return i + n_state
    m_next = args[i - 1]
    h = new[0] if m_next.dim() < 3 else new[0].unsqueeze(-2)
    args[i + n_state].copy_(h * m_next)
    return i + n_state + 1


def _inference_fn(cell: CellSpec, nonlinearity: str, lay: Layout,
                  example: Sequence[Tensor]) -> Callable[..., tuple]:
    """The step alone (no saved values): ``kernel(*inputs, [m_next], *new_state_buffers,
    [hm_buffer])``."""
    step = _pure_step(cell, nonlinearity, lay)

    def fwd(*args: Tensor) -> tuple:
        xs, i = _step_inputs(lay, args)
        _write_new_state(lay, args, i, step(*xs))
        return ()

    return fwd


def _forward_fn(cell: CellSpec, nonlinearity: str, lay: Layout,
                example: Sequence[Tensor]) -> Callable[..., tuple]:
    """The step's forward graph: ``kernel(*inputs, [m_next], *new_state_buffers,
    [hm_buffer], *save_buffers)``."""
    n_state = len(lay.present)
    xs0, _ = _step_inputs(lay, example)
    plan = step_plan(cell, nonlinearity, lay, xs0)

    def fwd(*args: Tensor) -> tuple:
        xs, i = _step_inputs(lay, args)
        outs = plan.fw(*xs)
        i = _write_new_state(lay, args, i, outs[:n_state])
        for buf, src in zip(args[i:], plan.sources):
            buf.copy_(outs[src])
        return ()

    return fwd


def _backward_fn(cell: CellSpec, nonlinearity: str, lay: Layout,
                 example: Sequence[Tensor]) -> Callable[..., tuple]:
    """The step's backward graph, reading what the forward kernel kept: ``kernel(*inputs,
    [m_next], *new_state, *save_buffers, *d_state, dh_rec, d_out, *d_pre_buffers,
    *d_given_state_buffers)``; returns the gradients of the step parameters."""
    n_state = len(lay.present)
    n_pre, n_given, n_m = lay.n_pre, sum(lay.present), len(lay.sites)
    xs0, _ = _step_inputs(lay, example)
    plan = step_plan(cell, nonlinearity, lay, xs0)
    n_buf = len(plan.buffers)

    def bwd(*args: Tensor) -> tuple:
        xs, i = _step_inputs(lay, args)
        m_next = args[i - 1] if lay.next_rec else None
        new = args[i:i + n_state]
        saves = args[i + n_state:i + n_state + n_buf]
        i += n_state + n_buf
        d_state = args[i:i + n_state]
        dh_rec, d_out = args[i + n_state], args[i + n_state + 1]
        i += n_state + 2
        d_bufs = args[i:i + n_pre + n_given]
        # everything that reaches h_t: the next step's state path, its recurrent product
        # (through that step's recurrent mask), and the output at t
        if m_next is None:
            dh = d_state[0] + d_out + dh_rec
        elif dh_rec.dim() < 3:
            dh = d_state[0] + d_out + dh_rec * m_next
        else:  # per-gate masks: each gate block's product, through its mask
            dh = d_state[0] + d_out + (dh_rec * m_next).sum(-2)
        place = {"input": xs, "state": new, "buffer": saves}
        grads = plan.bw(*(place[w][k] for w, k in plan.saved), dh, *d_state[1:])
        for buf, g in zip(d_bufs, grads[:n_pre + n_given]):
            if g is None:  # an input the step does not differentiate through (h_{t-1}
                buf.zero_()  # without zoneout)
            else:
                buf.copy_(g)
        return tuple(torch.zeros_like(x) if g is None else g
                     for x, g in zip(xs[n_pre + n_given + n_m:], grads[n_pre + n_given + n_m:]))

    return bwd


_BUILD = {"inference": _inference_fn, "forward": _forward_fn, "backward": _backward_fn}


class Kernel:
    """One step kernel of one layout. ``boxed(args)`` runs it on a list of tensors (the
    list may be emptied); ``fn`` is what runs now: the step function itself while a
    background compile is pending, then the compiled (or traced) kernel. ``desc`` describes
    it as plain data (kind, cell, nonlinearity, layout, the example tensors' shapes,
    strides, dtypes and devices): what the compiler process rebuilds it from."""

    def __init__(self, kind: str, fn: Callable[..., Any], example: Sequence[Tensor],
                 what: str, desc: tuple) -> None:
        self.kind, self.what, self.desc = kind, what, desc
        self.example = example
        self.source = fn  # the plain function: what is traced, and what runs meanwhile
        self.compiled = False
        self.pending = False
        self._set(fn)

    def _set(self, fn: Callable[..., Any], boxed: Callable[[list], Any] | None = None,
             direct: "_Direct | None" = None) -> None:
        self.fn = fn
        self.boxed = boxed if boxed is not None else (lambda args: fn(*args))
        self.direct = direct

    def __call__(self, *args: Tensor) -> Any:
        return self.fn(*args)

    def bind(self, steps: Sequence[Sequence[Tensor]]) -> list[Callable[[], Any]]:
        """One callable without arguments per argument list of ``steps`` (the steps of one
        sequence, which run one after the other): it runs the kernel on that list, as it is
        now, and returns what the kernel returns (None where a compiled kernel returns
        nothing). Where the compiled module's entry point has the plain form
        :func:`_direct` reads, the callables call its C++ functions themselves, with the
        entry point's temporaries made once for all the steps."""
        if self.direct is not None:
            return self.direct.bind(steps)
        boxed = self.boxed
        return [functools.partial(_call_boxed, boxed, a) for a in steps]


def _call_boxed(boxed: Callable[[list], Any], args: Sequence[Tensor]) -> Any:
    return boxed(list(args))  # the entry point empties the list it is given


@dataclass(frozen=True, eq=False)
class _Direct:
    """A compiled CPU kernel's entry point read as data (:func:`_direct`): ``n_args``
    arguments; ``scratch``: its temporaries, in order, each a name and the code of the
    expression making it (``empty_strided_cpu(...)``, or ``reinterpret_tensor`` of an
    earlier one); ``calls``: the C++ functions it calls, in order, each with its arguments
    (an int: the entry point's argument at that index; a str: a temporary)."""

    n_args: int
    scope: dict[str, Any]
    scratch: tuple[tuple[str, Any], ...]
    calls: tuple[tuple[Callable[..., Any], tuple[int | str, ...]], ...]

    def bind(self, steps: Sequence[Sequence[Tensor]]) -> list[Callable[[], Any]]:
        made: dict[str, Any] = {}
        for name, code in self.scratch:  # written before read in every call: shared
            made[name] = eval(code, self.scope, made)
        names = list(made)
        temps = [made[n] for n in names]
        # each call's arguments picked from [*step arguments, *temporaries]
        picks = [(fn, operator.itemgetter(*(i if isinstance(i, int) else
                                            self.n_args + names.index(i) for i in where)))
                 for fn, where in self.calls]
        out: list[Callable[[], Any]] = []
        for a in steps:
            if len(a) != self.n_args:
                raise ValueError(f"a step kernel takes {self.n_args} tensors, got {len(a)}")
            src = [*a, *temps]
            parts = [functools.partial(fn, *_picked(pick, src)) for fn, pick in picks]
            out.append(parts[0] if len(parts) == 1 else functools.partial(_run_all, parts))
        return out


def _picked(pick: Callable[[list], Any], src: list) -> tuple:
    got = pick(src)
    return got if isinstance(got, tuple) else (got,)  # itemgetter of one index: the item


def _run_all(parts: Sequence[Callable[[], Any]]) -> None:
    for part in parts:
        part()


def _key(t: Tensor) -> tuple:
    return (tuple(t.shape), t.stride(), t.dtype, t.device)


def _want_compile(elements: int) -> bool:
    if COMPILE not in ("auto", "always", "never"):
        raise ValueError(f"MEMLOSS_COMPILE={COMPILE!r} is not one of auto, always, never")
    if COMPILE == "never" or (COMPILE == "auto" and (_compile_broken or
                                                     elements < MIN_COMPILE_ELEMENTS)):
        return False
    return True


def _trace(fn: Callable[..., tuple], example: Sequence[Tensor]) -> tuple[Any, list[Tensor]]:
    from torch.fx.experimental.proxy_tensor import make_fx

    t0 = time.perf_counter()
    # distinct fresh tensors: make_fx maps each input object to one placeholder
    fresh = [torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)
             for t in example]
    gm = make_fx(fn, tracing_mode="fake")(*fresh)
    COMPILE_SECONDS["trace"] += time.perf_counter() - t0
    return gm, fresh


def _raw(compiled: Any, device: torch.device) -> Callable[[list], Any] | None:
    """The compiled module's own entry point (a list of tensors in), without the per-call
    wrappers around it (about 10 us a call): on CPU the generated C++ reads unaligned
    vectors, and the step graphs' writes into their buffer arguments stay inside the
    compiled graph (Inductor keeps input mutations of an inference graph there), so the
    wrappers have nothing to do. ``tests/models/test_fused.py`` checks the compiled kernels
    called this way against the reference path. None elsewhere (CUDA: alignment guards)."""
    call = getattr(compiled, "current_callable", None)
    return call if device.type == "cpu" and callable(call) else None


#: what a compiled CPU kernel's entry point may make besides calling its C++ functions
_SCRATCH_MAKERS = ("empty_strided_cpu", "reinterpret_tensor")


def _direct(compiled: Any, device: torch.device) -> _Direct | None:
    """The compiled module's entry point as data, where it has the plain form Inductor
    gives a step kernel on CPU: unpack the arguments, make temporaries
    (``empty_strided_cpu``, views of them by ``reinterpret_tensor``, one reused under
    another name), call C++ functions on arguments and temporaries, return nothing.
    Calling those functions directly (with the temporaries made once per sequence: Inductor
    writes a temporary before it reads it in each call) skips the entry point's Python and
    its allocations: at H = 64, B = 32 a forward step kernel 22-27 -> 15-18 us a call, a
    backward one 12-14 -> 4 us (one thread, docs/performance.md). None for any other form
    (then :func:`_raw`'s entry point runs)."""
    import ast

    call = _raw(compiled, device)
    func = getattr(call, "__func__", call)
    scope = getattr(func, "__globals__", None)
    path = scope.get("__file__") if isinstance(scope, dict) else None
    if not path:
        return None
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    defs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "call"]
    if len(defs) != 1 or not defs[0].args.args:
        return None
    body, args_name = defs[0].body, defs[0].args.args[-1].arg
    try:
        unpack, clear, *rest = body
        if not (isinstance(unpack, ast.Assign) and len(unpack.targets) == 1
                and isinstance(unpack.targets[0], ast.Tuple)
                and isinstance(unpack.value, ast.Name) and unpack.value.id == args_name
                and ast.unparse(clear) == f"{args_name}.clear()"):
            return None
        pos = {}
        for i, e in enumerate(unpack.targets[0].elts):
            if not isinstance(e, ast.Name):
                return None
            pos[e.id] = i
    except ValueError:
        return None
    scratch: list[tuple[str, Any]] = []
    calls: list[tuple[Callable[..., Any], tuple[int | str, ...]]] = []
    made: set[str] = set()
    returned = False
    for st in rest:
        if returned:
            return None
        if isinstance(st, ast.Delete):
            continue
        if isinstance(st, ast.Return):  # nothing returned: no temporary leaves a call
            if not (isinstance(st.value, ast.Tuple) and not st.value.elts):
                return None
            returned = True
        elif (isinstance(st, ast.Assign) and len(st.targets) == 1
              and isinstance(st.targets[0], ast.Name) and isinstance(st.value, ast.Name)
              and st.value.id in made):  # a temporary reused under another name
            scratch.append((st.targets[0].id, compile(ast.Expression(st.value), path, "eval")))
            made.add(st.targets[0].id)
        elif (isinstance(st, ast.Assign) and len(st.targets) == 1
              and isinstance(st.targets[0], ast.Name) and isinstance(st.value, ast.Call)
              and isinstance(st.value.func, ast.Name) and st.value.func.id in _SCRATCH_MAKERS
              and not st.value.keywords):
            # made of constants and earlier temporaries only, never of an argument
            names = {n.id for n in ast.walk(st.value) if isinstance(n, ast.Name)}
            if names & set(pos) or not names - made <= {st.value.func.id, "torch"}:
                return None
            scratch.append((st.targets[0].id, compile(ast.Expression(st.value), path, "eval")))
            made.add(st.targets[0].id)
        elif (isinstance(st, ast.Expr) and isinstance(st.value, ast.Call)
              and isinstance(st.value.func, ast.Name) and not st.value.keywords
              and all(isinstance(a, ast.Name) and (a.id in pos or a.id in made)
                      for a in st.value.args)):
            fn = scope.get(st.value.func.id)
            if fn is None or type(fn).__name__ != "builtin_function_or_method":
                return None  # only the compiled C++ functions
            calls.append((fn, tuple(pos.get(a.id, a.id) for a in st.value.args)))
        else:
            return None
    if not returned or not calls:
        return None
    return _Direct(len(pos), scope, tuple(scratch), tuple(calls))


def _inductor_options() -> dict[str, Any]:
    """Inductor's options for every step kernel (part of the kernel's name in the cache).

    One thread: a step kernel is 10-100 us of work, below what a parallel region pays for
    (and two threads on a busy machine wait on each other at barriers). No size asserts: a
    kernel is only called with the layout it is keyed by, and one assert per argument cost
    more than the backward's own work (at H = 64, B = 32: 22 against 8.5 us a call).
    ``tanh`` as ``2 / (1 + exp(-2x)) - 1`` in the vectorized C++ (Inductor's
    ``cpp.use_decompose_tanh``, its default before torch 2.7): the vectorized ``tanh`` it
    replaces cost three times an ``exp`` here and was most of the LSTM's forward kernel
    (zoneout, B = 32: 23.7 against 15.8 us a call at H = 64, 84.5 against 53.5 at H = 256);
    its absolute error stays at float rounding (about 1e-7 in float32 near 0, where the
    relative error grows), docs/performance.md. Where this torch has no such option,
    the plain ``tanh`` is kept."""
    import torch._inductor.config as config

    options: dict[str, Any] = {"cpp.threads": 1, "size_asserts": False}
    if hasattr(config.cpp, "use_decompose_tanh"):
        options["cpp.use_decompose_tanh"] = True
    return options


def _inductor(gm: Any, fresh: Sequence[Tensor]) -> Any:
    """Compile a traced step graph with Inductor (through its disk cache), with
    :func:`_inductor_options`."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    # fake inputs of a mode with a shape environment: what Inductor's disk cache needs to
    # key (and so reuse across processes) a graph compiled outside torch.compile
    mode = FakeTensorMode(shape_env=ShapeEnv())
    fakes = [mode.from_tensor(t, static_shapes=True) for t in fresh]
    return torch._inductor.compile(gm, fakes, options=_inductor_options())


def _compile_failed(e: BaseException) -> None:
    if not _compile_broken:
        log.warning("compiling a step kernel failed (%s: %s); running traced steps op by op "
                    "(set MEMLOSS_COMPILE=never to skip compiling)", type(e).__name__,
                    _first_line(e))
    _compile_broken.append(type(e).__name__)


def _graph_key(gm: Any, fresh: Sequence[Tensor]) -> str:
    """A name for a traced kernel in the kernel cache: its graph's code, its inputs' layout,
    torch's version and the Inductor options it is compiled with (a kernel compiled with
    other options is another entry of Inductor's cache)."""
    import hashlib

    text = "\n".join([torch.__version__, gm.code, *(repr(_key(t)) for t in fresh),
                      repr(sorted(_inductor_options().items()))])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _marker(key: str) -> Path:
    """A file that says a kernel's graph is in the kernel cache (Inductor's own cache has
    no lookup that does not compile on a miss)."""
    return kernel_cache_dir() / "memloss-kernels" / key


def _compile(k: Kernel, background: bool = False) -> None:
    """Trace and compile ``k`` (on any thread, one at a time), then switch it to the result;
    where compiling fails, to the traced graph. ``background``: a kernel the cache does not
    hold yet is first compiled by the compiler process (:func:`_in_process`), so that this
    process only loads it."""
    with _lock:
        _use_cache_dir()  # before tracing, which imports Inductor and fixes its cache folder
        gm, fresh = _trace(k.source, k.example)
        if _compile_broken:
            k._set(gm)
            k.pending = False
            return
        key = _graph_key(gm, fresh)
    if background and not _marker(key).exists():
        _in_process(k)
    with _lock:
        if _compile_broken:
            k._set(gm)
            k.pending = False
            return
        t0 = time.perf_counter()
        try:
            compiled = _inductor(gm, fresh)
        except Exception as e:  # no working C++ compiler, an unsupported op: run the graph
            _compile_failed(e)
            k._set(gm)
            return
        finally:
            k.pending = False
            COMPILE_SECONDS["compile"] += time.perf_counter() - t0
        device = fresh[0].device
        k._set(compiled, _raw(compiled, device), _direct(compiled, device))
        k.compiled = True
        try:
            _marker(key).parent.mkdir(parents=True, exist_ok=True)
            _marker(key).touch()
        except OSError:  # a read-only cache: the next process asks the compiler process again
            pass
        log.debug("compiled the %s kernel of %s in %.1f s", k.kind, k.what,
                  time.perf_counter() - t0)


#: the compiler process's command line after the interpreter
_COMPILER_ARGS = ["-c", "from memloss.models.paths.kernels import _compiler_main; _compiler_main()"]


class _CompileFailed(Exception):
    """Inductor could not compile a kernel in the compiler process."""


class _Compiler:
    """The compiler process: a fresh interpreter (``python -c``, at a lower priority) that
    reads pickled kernel descriptions (:attr:`Kernel.desc`) from its stdin, traces and
    compiles each into the kernel cache, and answers one line per kernel. It ends when this
    process closes its stdin (when this process ends), after the kernel in hand."""

    def __init__(self) -> None:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(kernel_cache_dir()),
                   OMP_NUM_THREADS="1", MEMLOSS_COMPILE="always")
        # the same modules as here (a checkout on sys.path, a test's root)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, *_COMPILER_ARGS],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, env=env,
            close_fds=True)

    def compile(self, data: bytes) -> float:
        """Compile one pickled description; its seconds in the compiler process."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except OSError:
            pass  # it ended: said below
        ready, _, _ = select.select([self.proc.stdout], [], [], COMPILER_TIMEOUT)
        if not ready:  # hung (or starved): never wait on it again
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"it answered nothing in {COMPILER_TIMEOUT:g} s")
        line = self.proc.stdout.readline().decode(errors="replace").strip()
        status, _, rest = line.partition(" ")
        if status == "ok":
            return float(rest)
        if status == "compile-failed":
            raise _CompileFailed(rest)
        if status == "error":
            raise RuntimeError(rest)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # stdout closed, still running: end it
            self.proc.kill()
            code = self.proc.wait()
        self.err.seek(0)
        tail = self.err.read().decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"it exited ({code}) {tail[0][:200]}".rstrip())


def _compiler_main() -> None:
    """The compiler process's loop (see :class:`_Compiler`)."""
    answers, inp = sys.stdout, sys.stdin.buffer
    sys.stdout = sys.stderr  # whatever a library prints stays off the answer channel
    try:
        os.nice(COMPILER_NICE)
    except OSError:
        pass
    _use_cache_dir()
    while True:
        try:
            kind, cell, nonlinearity, lay, specs = pickle.load(inp)
        except EOFError:
            return
        t0 = time.perf_counter()
        try:
            example = [torch.empty_strided(shape, stride, dtype=dtype, device=device)
                       for shape, stride, dtype, device in specs]
            gm, fresh = _trace(_BUILD[kind](cell, nonlinearity, lay, example), example)
        except Exception as e:
            answer = f"error {type(e).__name__}: {_first_line(e)}"
        else:
            try:
                _inductor(gm, fresh)
                answer = f"ok {time.perf_counter() - t0:.3f}"
            except Exception as e:
                answer = f"compile-failed {type(e).__name__}: {_first_line(e)}"
        answers.write(answer + "\n")
        answers.flush()


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else ""


def _in_process(k: Kernel) -> None:
    """Compile ``k`` into the kernel cache in the compiler process (started here the first
    time), so that :func:`_compile` then only loads it. Where the process cannot be used,
    nothing is done and the caller's :func:`_compile` compiles here."""
    if not COMPILER_PROCESS or _child_broken or _compile_broken:
        return
    try:
        data = pickle.dumps(k.desc)
    except Exception as e:  # e.g. a cell defined where no other process can import it
        log.debug("the %s kernel of %s is compiled in this process: %s", k.kind, k.what, e)
        return
    try:
        if not _child:
            _child.append(_Compiler())
        COMPILE_SECONDS["process"] += _child[0].compile(data)
    except _CompileFailed as e:
        _compile_failed(e)
    except Exception as e:  # could not start, died, could not rebuild the kernel
        _child_broken.append(type(e).__name__)
        log.warning("the kernel compiler process failed (%s: %s); compiling step kernels in "
                    "a background thread of this process instead (training is slower "
                    "meanwhile)", type(e).__name__, _first_line(e))


def _work() -> None:
    while True:
        k = _jobs.get()
        try:
            _compile(k, background=True)
        except Exception as e:  # keep the step function: correct, only slower
            k.pending = False
            log.warning("a step kernel could not be built (%s: %s); the layer keeps running "
                        "the step uncompiled", type(e).__name__, str(e)[:200])
        finally:
            _jobs.task_done()


def _announce(k: Kernel, background: bool) -> None:
    if _announced:
        return
    _announced.append(True)
    how = ("in the background (a separate compiler process); until they are ready the layer "
           "runs the step uncompiled (slower, same results)" if background
           else "before the first step")
    log.info("compiling the fused path's step kernels for %s with TorchInductor %s. Once per "
             "layout (masks, B, H, dtype): 5-20 s of CPU per kernel on an empty cache, "
             "loaded from the kernel cache %s afterwards; MEMLOSS_COMPILE=never skips "
             "compiling (docs/performance.md)", k.what, how, kernel_cache_dir())


def _kernel(kind: str, cell: CellSpec, nonlinearity: str, lay: Layout,
            example: Sequence[Tensor]) -> Kernel:
    pre = example[0]
    want = _want_compile(pre.shape[0] * pre.shape[-1] if pre.dim() > 1 else pre.numel())
    key = (kind, cell.name, nonlinearity, lay, want, tuple(_key(t) for t in example))
    k = _cache.get(key)
    if k is not None:
        return k
    what = (f"a {cell.name} layer (B={pre.shape[0]}, {pre.shape[-1]} gate values, "
            f"{str(pre.dtype).replace('torch.', '')}, {pre.device.type})")
    # the caller's tensors go on changing: keep only their layout
    example = [torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)
               for t in example]
    desc = (kind, cell, nonlinearity, lay,
            tuple((tuple(t.shape), t.stride(), t.dtype, t.device) for t in example))
    k = _cache[key] = Kernel(kind, _BUILD[kind](cell, nonlinearity, lay, example), example,
                             what, desc)
    if not want:
        with _lock:
            gm, _ = _trace(k.source, example)
        k._set(gm)
    elif COMPILE == "always":
        _announce(k, background=False)
        _compile(k)
    else:
        _announce(k, background=True)
        k.pending = True
        if not _worker:
            # imported here, not in two threads at once (their imports cross: a partly
            # initialized module in one thread breaks the other)
            for name in ("torch._dynamo", "torch._inductor.compile_fx",
                         "torch.fx.experimental.proxy_tensor"):
                importlib.import_module(name)
            _worker.append(threading.Thread(target=_work, name="memloss-kernels", daemon=True))
            _worker[0].start()
        _jobs.put(k)
    return k


def inference_kernel(cell: CellSpec, nonlinearity: str, lay: Layout,
                     example: Sequence[Tensor]) -> Kernel:
    """The step without autograd, for tensors laid out like ``example`` (the kernel's
    arguments: their shapes, strides, dtypes and devices); cached. Call it as
    ``kernel(*pre, *state, *masks, *params, [m_rec_next], *new_state_buffers, [hm_buffer])``
    (or ``kernel.boxed([...])``); it returns nothing."""
    return _kernel("inference", cell, nonlinearity, lay, example)


def forward_kernel(cell: CellSpec, nonlinearity: str, lay: Layout,
                   example: Sequence[Tensor]) -> Kernel:
    """The training forward kernel of a layout: as :func:`inference_kernel`, and it also
    writes what the backward reads into the save buffers
    (:func:`step_plan` ``(...).buffers``) given after the others:
    ``kernel(..., *new_state_buffers, [hm_buffer], *save_buffers)``."""
    return _kernel("forward", cell, nonlinearity, lay, example)


def backward_kernel(cell: CellSpec, nonlinearity: str, lay: Layout,
                    example: Sequence[Tensor]) -> Kernel:
    """The backward kernel of a layout: ``kernel(*pre, *state, *masks, *params,
    [m_rec_next], *new_state, *save_buffers, *d_state, dh_rec, d_out, *d_pre_buffers,
    *d_prev_state_buffers)`` writes the gradients of the pre-activations and of the given
    previous states into the buffers and returns those of the step parameters. It reads
    the values the forward kept (no recomputation). With per-gate recurrent masks ``dh_rec``
    is ``[B, G, H]``: the product of each gate block."""
    return _kernel("backward", cell, nonlinearity, lay, example)


def wait_compiled(timeout: float | None = None) -> bool:
    """Block until every background compile has finished (True), or ``timeout`` seconds
    have passed (False)."""
    end = None if timeout is None else time.monotonic() + timeout
    while any(k.pending for k in list(_cache.values())):
        if end is not None and time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def compiled_kernels() -> int:
    """How many cached kernels are compiled (the rest run their traced graph or, while a
    compile is pending, the step function)."""
    return sum(k.compiled for k in list(_cache.values()))


def compile_stats() -> dict[str, Any]:
    """What building step kernels has cost this process, for a run's record: seconds spent
    tracing and compiling here (the compiling partly in the background) and in the compiler
    process, kernels compiled and still pending, the mode and the kernel cache folder."""
    ks = list(_cache.values())
    return {"mode": COMPILE, "trace_seconds": round(COMPILE_SECONDS["trace"], 3),
            "compile_seconds": round(COMPILE_SECONDS["compile"], 3),
            "compiler_process_seconds": round(COMPILE_SECONDS["process"], 3),
            "compiled_kernels": sum(k.compiled for k in ks),
            "pending_kernels": sum(k.pending for k in ks),
            "cache_dir": str(kernel_cache_dir())}


def clear_cache() -> None:
    """Forget the kernels built in this process (the disk cache is kept), after any
    background compile has finished."""
    wait_compiled()
    _cache.clear()
    _plans.clear()
    _compile_broken.clear()
