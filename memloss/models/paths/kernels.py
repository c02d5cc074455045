"""Step kernels derived from a cell's step function: no equation is written here.

For one layout of a step's inputs (which masks, their shapes, dtype, device) this module
traces two functions of plain tensors with ``make_fx`` and, where it pays, compiles them
with TorchInductor (C++ on CPU, Triton on CUDA):

* forward: ``cell.step`` on the step's pre-activations, previous state and masks, the new
  state written into the caller's buffers (and ``h_t m_rec,t+1``, the next product's
  input, when the recurrent site has a tied sampled mask);
* backward: the vector-Jacobian product of the same ``cell.step`` (``torch.func.vjp``),
  after summing the three gradients that reach ``h_t`` (through the next step's state, its
  recurrent product, and the output); the gradients of the pre-activations and of the
  previous state are written into the caller's buffers, those of the step's parameters
  returned.

Writing into buffers lets Inductor store results straight into the sequence's tensors
(no per-step copies). Whether to compile: :data:`COMPILE` (env ``MEMLOSS_COMPILE``):
``auto`` compiles steps of at least :data:`MIN_COMPILE_ELEMENTS` gate values (``B * G*H``)
when a compiler works, ``always``, or ``never`` (the traced graphs run op by op; the tests
use this for the full cell x scheme matrix). Compiled kernels are cached in memory per
layout and on disk by Inductor's own cache (``TORCHINDUCTOR_CACHE_DIR``), so a second
process reuses them; :data:`COMPILE_SECONDS` sums the time spent compiling here.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx
from torch.fx.experimental.symbolic_shapes import ShapeEnv

from ..cells import CellSpec

__all__ = ["Layout", "forward_kernel", "backward_kernel", "compiled_kernels", "COMPILE",
           "MIN_COMPILE_ELEMENTS", "COMPILE_SECONDS", "clear_cache"]

log = logging.getLogger(__name__)

#: ``auto`` | ``always`` | ``never``: whether step kernels are compiled with Inductor
COMPILE: str = os.environ.get("MEMLOSS_COMPILE", "auto")
#: ``auto`` compiles steps with at least this many gate values (B * G*H); smaller steps run
#: the traced graph op by op (compiling costs seconds, once per layout and process)
MIN_COMPILE_ELEMENTS = 8192
#: seconds spent tracing and compiling step kernels in this process, by kind
COMPILE_SECONDS: dict[str, float] = {"trace": 0.0, "compile": 0.0}

_cache: dict[tuple, tuple[Callable[..., Any], bool]] = {}
_compile_broken: list[str] = []


@dataclass(frozen=True)
class Layout:
    """Which inputs a step kernel takes, in order (all tensors): ``n_pre`` pre-activations,
    the previous state (``present[k]``: state ``k`` is given; a carried state is absent at the
    start of a sequence), the masks of ``sites``, the step parameters ``params``, and whether
    a tied recurrent mask of the next step is passed (``next_rec``)."""

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


def _forward_fn(cell: CellSpec, nonlinearity: str, lay: Layout) -> Callable[..., tuple]:
    n_state = len(lay.present)

    def fwd(*args: Tensor) -> tuple:
        pre, state, m, p, m_next, i = lay.split(args)
        new = cell.step(pre, state, m, p, nonlinearity)
        for buf, value in zip(args[i:i + n_state], new):
            buf.copy_(value)
        if m_next is not None:
            args[i + n_state].copy_(new[0] * m_next)
        return ()

    return fwd


def _backward_fn(cell: CellSpec, nonlinearity: str, lay: Layout) -> Callable[..., tuple]:
    n_state = len(lay.present)
    given = [k for k, g in enumerate(lay.present) if g]

    def bwd(*args: Tensor) -> tuple:
        pre, state, m, p, m_next, i = lay.split(args)
        d_state = args[i:i + n_state]
        dh_rec, d_out = args[i + n_state], args[i + n_state + 1]
        i += n_state + 2
        d_pre_bufs = args[i:i + lay.n_pre]
        d_given_bufs = args[i + lay.n_pre:]
        # everything that reaches h_t: the next step's state path, its recurrent product
        # (through that step's recurrent mask), and the output at t
        dh = d_state[0] + d_out + (dh_rec if m_next is None else dh_rec * m_next)

        def f(pre: tuple, given_state: tuple, p: dict) -> tuple:
            full = list(state)
            for k, s in zip(given, given_state):
                full[k] = s
            return cell.step(pre, tuple(full), m, p, nonlinearity)

        _, vjp = torch.func.vjp(f, pre, tuple(state[k] for k in given), p)
        d_pre, d_given, d_p = vjp((dh, *d_state[1:]))
        for buf, g in zip((*d_pre_bufs, *d_given_bufs), (*d_pre, *d_given)):
            buf.copy_(g)
        return tuple(d_p[k] for k in lay.params)

    return bwd


def _key(t: Tensor) -> tuple:
    return (tuple(t.shape), t.stride(), t.dtype, t.device)


def _want_compile(elements: int) -> bool:
    if COMPILE not in ("auto", "always", "never"):
        raise ValueError(f"MEMLOSS_COMPILE={COMPILE!r} is not one of auto, always, never")
    if COMPILE == "never" or (COMPILE == "auto" and (_compile_broken or
                                                     elements < MIN_COMPILE_ELEMENTS)):
        return False
    return True


def _derive(fn: Callable[..., tuple], example: Sequence[Tensor], compile_: bool
            ) -> tuple[Callable[..., Any], bool]:
    t0 = time.perf_counter()
    # distinct fresh tensors: make_fx maps each input object to one placeholder
    fresh = [torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)
             for t in example]
    gm = make_fx(fn, tracing_mode="fake")(*fresh)
    COMPILE_SECONDS["trace"] += time.perf_counter() - t0
    if not compile_:
        return gm, False
    t0 = time.perf_counter()
    try:
        # fake inputs of a mode with a shape environment: what Inductor's disk cache needs
        # to key (and so reuse across processes) a graph compiled outside torch.compile
        mode = FakeTensorMode(shape_env=ShapeEnv())
        fakes = [mode.from_tensor(t, static_shapes=True) for t in fresh]
        # one thread: a step kernel is 10-100 us of work, below what a parallel region pays
        # for (and two threads on a busy machine wait on each other at every barrier)
        compiled = torch._inductor.compile(gm, fakes, options={"cpp.threads": 1})
    except Exception as e:  # no working C++ compiler, an unsupported op: run the traced graph
        if not _compile_broken:
            log.warning("compiling a step kernel failed (%s: %s); running traced steps op by "
                        "op (set MEMLOSS_COMPILE=never to skip compiling)",
                        type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
        _compile_broken.append(type(e).__name__)
        return gm, False
    finally:
        COMPILE_SECONDS["compile"] += time.perf_counter() - t0
    return compiled, True


def _kernel(kind: str, cell: CellSpec, nonlinearity: str, lay: Layout,
            example: Sequence[Tensor]) -> Callable[..., Any]:
    pre = example[0]
    want = _want_compile(pre.shape[0] * pre.shape[-1] if pre.dim() > 1 else pre.numel())
    key = (kind, cell.name, nonlinearity, lay, want, tuple(_key(t) for t in example))
    got = _cache.get(key)
    if got is None:
        build = _forward_fn if kind == "forward" else _backward_fn
        got = _cache[key] = _derive(build(cell, nonlinearity, lay), example, want)
    return got[0]


def forward_kernel(cell: CellSpec, nonlinearity: str, lay: Layout,
                   example: Sequence[Tensor]) -> Callable[..., Any]:
    """The forward kernel of a layout, built for tensors laid out like ``example`` (the
    kernel's arguments: their shapes, strides, dtypes and devices); traced and compiled on
    first use, then cached. Call it as ``kernel(*pre, *state, *masks, *params, [m_rec_next],
    *new_state_buffers, [hm_buffer])``; it returns nothing."""
    return _kernel("forward", cell, nonlinearity, lay, example)


def backward_kernel(cell: CellSpec, nonlinearity: str, lay: Layout,
                    example: Sequence[Tensor]) -> Callable[..., Any]:
    """The backward kernel of a layout: ``kernel(*pre, *state, *masks, *params,
    [m_rec_next], *d_state, dh_rec, d_out, *d_pre_buffers, *d_prev_state_buffers)`` writes
    the gradients of the pre-activations and of the given previous states into the buffers
    and returns those of the step parameters."""
    return _kernel("backward", cell, nonlinearity, lay, example)


def compiled_kernels() -> int:
    """How many cached kernels are compiled (the rest run their traced graph)."""
    return sum(compiled for _, compiled in _cache.values())


def clear_cache() -> None:
    """Forget the kernels built in this process (Inductor's disk cache is kept)."""
    _cache.clear()
    _compile_broken.clear()
