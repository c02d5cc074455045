"""Bounds checked before any work or write: every size, count and thread number a user can
give is checked here against the machine (its cores, its available memory) or a fixed limit,
with one line naming the value, the limit and what to do. The CLI, ``memloss sweep`` (its
dry run too) and the Python API call these same checks:

* threads: at most the cores this process may use (:func:`usable_cpus`), checked when a run
  starts (:func:`check_threads`; a config read from a run directory made on a larger machine
  still loads);
* a net: at most :data:`MAX_LAYERS` layers, and its parameters (counted from its sizes,
  nothing is allocated) must fit in the available memory (:func:`check_net`);
* a sweep: at most :data:`MAX_RUNS` runs (:func:`check_runs`), counted before they are listed;
* MC samples: at most :data:`MAX_SAMPLES` per batch (TrainConfig.mc_samples, `memloss eval
  --samples`, MC inference in the API).
"""
from __future__ import annotations

import os
from typing import Any

__all__ = ["MAX_LAYERS", "MAX_RUNS", "MAX_SAMPLES", "usable_cpus", "available_memory",
           "net_parameters", "check_threads", "check_net", "check_runs"]

#: the most layers a recurrent stack may have (deep RNNs in the papers have 2-4)
MAX_LAYERS = 1000
#: the most runs one sweep may have (split a larger study into several sweeps)
MAX_RUNS = 100_000
#: the most MC samples per batch (each costs one forward pass)
MAX_SAMPLES = 100_000
#: bytes per parameter when a net is built (float32)
_BYTES = 4


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; a SLURM allocation narrows it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of host memory available now (None when unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_threads(owner: str, threads: Any) -> None:
    """``threads`` (None: leave torch's count) must not exceed the usable cores."""
    if threads is None or isinstance(threads, bool) or not isinstance(threads, int):
        return  # the type is the config's own check
    cores = usable_cpus()
    if threads > cores:
        raise ValueError(f"{owner}.threads={threads} exceeds the {cores} core(s) this process "
                         f"may use; give at most threads={cores}")


def net_parameters(cell_gates: int, input_size: int, hidden: int, layers: int, *,
                   directions: int = 1, vocab: int | None = None, output: int | None = None
                   ) -> int:
    """The parameter count of an embedding (``vocab`` rows of ``input_size``) -> recurrent
    stack -> linear head net, from its sizes (exact for torch.nn-layout cells)."""
    g = cell_gates * hidden
    first = g * (input_size + hidden + 2)
    rest = g * (directions * hidden + hidden + 2)
    total = directions * (first + (layers - 1) * rest)
    if vocab is not None:
        total += vocab * input_size
    if output is not None:
        total += output * (directions * hidden + 1)
    return total


def check_net(owner: str, *, cell_gates: int, input_size: int, hidden: int, layers: int,
              directions: int = 1, vocab: int | None = None, output: int | None = None) -> None:
    """Refuse a net with more than :data:`MAX_LAYERS` layers, or whose parameters alone
    cannot fit in the available memory, before any layer is built."""
    if layers > MAX_LAYERS:
        raise ValueError(f"{owner}.num_layers={layers} exceeds the limit of {MAX_LAYERS} layers; "
                         "give fewer layers")
    count = net_parameters(cell_gates, input_size, hidden, layers, directions=directions,
                           vocab=vocab, output=output)
    have = available_memory()
    if have is not None and count * _BYTES > have:
        raise MemoryError(f"the net has {count:,} parameters: {count * _BYTES / 2**30:.1f} GiB "
                          f"for its weights alone, but {have / 2**30:.1f} GiB is available; "
                          "reduce hidden_size, num_layers, embedding_dim or the vocabulary")


def check_runs(owner: str, count: int) -> None:
    """A sweep of ``count`` runs must not exceed :data:`MAX_RUNS`."""
    if count > MAX_RUNS:
        raise ValueError(f"{owner} has {count:,} runs, more than the limit of {MAX_RUNS:,}; "
                         "split it into several sweeps (fewer --seeds or grid values)")

