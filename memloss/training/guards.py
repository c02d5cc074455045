"""Checks a run makes before it writes its first byte, and the cleanup of a start that
failed before its first checkpoint.

* :func:`check_out`: ``--out`` must be a new or empty folder, or a start of the same config
  that stopped before its first checkpoint; never a folder holding other files or a run.
* :func:`check_memory`: the net's parameters, gradients, optimizer state and the
  best-weights copy must fit in the memory available (counted on the ``meta`` device, so
  nothing is allocated).
* :func:`remove_half_run`: what a failed start wrote is removed, so a retry is not blocked.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import torch

from memloss.config import TrainConfig, changed_fields
from memloss.core import bounds
from memloss.core import runfiles as rf
from memloss.models import Net, NetConfig
from memloss.runs import read_run_config

__all__ = ["check_out", "check_memory", "make_dirs", "remove_half_run", "remove_created",
           "available_memory", "changed_fields"]

log = logging.getLogger(__name__)

#: float32 copies of the parameters a run holds: weights, gradients, up to two optimizer
#: buffers (Adam, RMSprop with momentum), the best-validation copy and one being saved
_COPIES = 6


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _check_parents(out: Path) -> None:
    """The first existing folder above ``out`` must be a writable folder."""
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"--out {out}: {parent} is a file, not a folder; choose a "
                                 "directory under a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ValueError(f"--out {out}: cannot create it, {parent} is not writable; "
                                 "choose a directory you can write")
            return


def check_out(out: Path, config: TrainConfig) -> bool:
    """Check that a new run of ``config`` may be written to ``out``; True when ``out`` holds
    an earlier start of the same config that stopped before its first checkpoint (its
    files are replaced), False when ``out`` is new or empty."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a directory")
    if not out.exists():
        _check_parents(out)
        return False
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} is not writable; choose a directory you can write")
    entries = rf.run_entries(out)
    if not entries:
        return False
    if not rf.is_run_dir(out):
        raise ValueError(f"--out {out} is not empty and holds no memloss run ({_listing(entries)}); "
                         "choose a new or empty directory (memloss does not write over other files)")
    if (out / rf.CHECKPOINT).exists() or rf.read_checkpoint(out) is not None:
        raise ValueError(f"{out} already holds a run; resume it with `memloss train --resume "
                         f"{out}` or choose another --out")
    diff = changed_fields(config, read_run_config(out).train)
    if diff:
        raise ValueError(f"{out} holds the start of another run (it differs in {_listing(diff)}) "
                         "that stopped before its first checkpoint; remove it or choose another --out")
    extra = sorted(set(entries) - {rf.CONFIG, rf.METRICS})
    if extra:
        raise ValueError(f"{out} holds an unfinished start of this run and other files "
                         f"({_listing(extra)}); remove them or choose another --out")
    return True


def make_dirs(out: Path) -> list[Path]:
    """Create ``out`` and missing parents; return the folders created, outermost first."""
    created = [p for p in [*reversed(out.absolute().parents), out.absolute()] if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    return created


def remove_half_run(out: Path) -> None:
    """Remove what a start wrote before its first checkpoint (everything in ``out`` but the
    lock: the folder was empty, or held this run's earlier start)."""
    for name in rf.run_entries(out):
        p = out / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    rf.clean_leftovers(out)
    log.info("%s: the run stopped before its first checkpoint; its files were removed", out)


def remove_created(out: Path, created: list[Path], *, lock_files: bool = True) -> None:
    """After the lock is released: remove the folders this run created (when empty) and,
    with ``lock_files``, its lock files in them."""
    if not created:
        return
    if lock_files:
        for name in (rf.LOCK, rf.LOCK_OWNER):
            (out / name).unlink(missing_ok=True)
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            break


def available_memory(device: torch.device) -> int | None:
    """Bytes of memory available on ``device`` (None when unknown): a GPU's free memory, else
    the host's (:func:`memloss.core.bounds.available_memory`)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return bounds.available_memory()


def check_memory(net: NetConfig, device: torch.device) -> None:
    """Refuse a net whose parameters (with gradients, optimizer state and the best-weights
    copy) cannot fit in the memory available, before anything is allocated."""
    with torch.device("meta"):
        count = sum(p.numel() for p in Net(net).parameters())
    need = count * 4 * _COPIES
    have = available_memory(device)
    if have is not None and need > have:
        raise MemoryError(f"the net has {count:,} parameters: about {need / 2**30:.1f} GiB with "
                          f"gradients, optimizer state and copies, but {have / 2**30:.1f} GiB is "
                          f"available on {device}; reduce hidden_size, num_layers, embedding_dim "
                          "or the vocabulary")
