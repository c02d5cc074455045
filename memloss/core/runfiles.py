"""The run-directory file format: file names, and reading and writing each file.

A run directory is the unit the trainer writes and everything else reads.

Layout (every file written atomically: a temp file in the same folder, then ``os.replace``)::

    RUN/config.json          resolved TrainConfig ("train"), NetConfig ("net"), task_info,
                             command line, package versions, seed, creation time
    RUN/metrics.jsonl        one JSON object per evaluation (epoch end or eval_every steps)
    RUN/final.json           test metrics under each inference mode (+ which weights)
    RUN/model.safetensors    weights of the latest good checkpoint
    RUN/best.safetensors     weights at the best validation score (when validated)
    RUN/trainer_state.pt     optimizer, schedule, RNG and loop state for --resume
                             (tensors and plain containers only: torch.load(weights_only=True))
    RUN/trainer_state.json   the loop counters in readable form
    RUN/diagnostics/         probe outputs: <probe>.csv (tidy frame) and <probe>.json

Loading never unpickles arbitrary objects; a missing, truncated or corrupt file raises
:class:`RunDirError` naming the file and what to do.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .atomic import atomic_write, atomic_write_text

__all__ = [
    "RunDirError", "atomic_write", "write_json", "read_json", "append_jsonl",
    "read_jsonl", "save_weights", "load_weights", "weights_metadata", "save_state", "load_state", "CONFIG", "METRICS",
    "FINAL", "MODEL", "BEST", "STATE", "STATE_JSON", "DIAGNOSTICS", "is_run_dir",
]

log = logging.getLogger(__name__)

CONFIG = "config.json"
METRICS = "metrics.jsonl"
FINAL = "final.json"
MODEL = "model.safetensors"
BEST = "best.safetensors"
STATE = "trainer_state.pt"
STATE_JSON = "trainer_state.json"
DIAGNOSTICS = "diagnostics"


class RunDirError(ValueError):
    """A run directory (or one of its files) is missing, truncated or corrupt."""


def _write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_text(path, text)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically (fails before touching ``path`` if ``obj``
    is not JSON-serialisable)."""
    return _write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} is missing; is {path.parent} a memloss run directory "
                          "(written by `memloss train --out`)?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path} is not valid JSON ({e}); the file is corrupt or truncated: "
                          "restore it or re-run training") from None


def append_jsonl(path: str | os.PathLike, record: dict) -> Path:
    """Append one JSON line; the whole file is rewritten atomically (metrics files are small)."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    return _write_text(path, old + json.dumps(record, allow_nan=True) + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise RunDirError(f"{path} line {i} is not valid JSON ({e}); the file is corrupt") from None
    return out


def save_weights(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> Path:
    """Save tensors as safetensors, atomically (contiguous CPU copies)."""
    data = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(data, tmp, metadata=metadata))


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} is missing; the run has no saved weights yet (train it, or "
                          "resume it with `memloss train --resume`)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise RunDirError(f"{path} is truncated or corrupt ({e}); restore it from a backup or "
                          "re-run training") from None


def weights_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata stored in a safetensors file (e.g. the training step)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise RunDirError(f"{path} is truncated or corrupt ({e}); restore it or re-run training") from None


def save_state(path: str | os.PathLike, state: dict) -> Path:
    """Save a dict of tensors and plain containers (loadable with ``weights_only=True``)."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} is missing; this run cannot be resumed (it has no trainer "
                          "state); start a new run instead")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated/corrupt zips
        raise RunDirError(f"{path} is truncated or corrupt ({type(e).__name__}: {e}); this run "
                          "cannot be resumed; start a new run") from None


def is_run_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG).is_file()
