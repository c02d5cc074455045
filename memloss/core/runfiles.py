"""The run-directory file format: file names, reading and writing each file, the checkpoint
commit and the run lock.

A run directory is the unit the trainer writes and everything else reads::

    RUN/config.json          resolved TrainConfig ("train"), NetConfig ("net"), task_info,
                             command line, package versions, seed, creation time, resumes
    RUN/metrics.jsonl        one JSON object per evaluation (epoch end or eval_every steps)
    RUN/final.json           test metrics under each inference mode (+ which weights)
    RUN/checkpoint.json      the checkpoint manifest: the commit point (see below)
    RUN/checkpoint-<step>-<id>/model.safetensors   weights at that step
                              /best.safetensors    weights at the best validation score
                              /trainer_state.pt    optimizer, schedule, RNG and loop state
                                                   (torch.load(weights_only=True))
    RUN/evaluations.jsonl    one JSON object per `memloss eval` (scores, split, weights and
                             the checkpoint they came from)
    RUN/runtime.jsonl        one JSON object per training process that wrote final.json: what
                             it cost on its machine (seconds, CPU seconds, step kernels
                             compiled); never a result, so no comparison of runs reads it
    RUN/diagnostics/         probe outputs: <probe>.csv (tidy frame) and <probe>.json
    RUN/.lock, .lock.json    the writer's OS lock and who holds it (pid, host, since)

**One commit point per checkpoint.** :func:`commit_checkpoint` writes every file of a
checkpoint into a new hidden folder, flushes each file and the folder to disk, renames the
folder to ``checkpoint-<step>-<id>``, and then replaces ``checkpoint.json`` (the manifest:
step, folder, each file's sha256 and size, the number of metrics lines it covers, the configs
it was trained under and the loop counters) with one atomic rename. Only then is the previous
checkpoint folder removed. A kill or a full disk at any point leaves the previous manifest
and its folder intact; what an interrupted write left behind is removed by the next writer
(:func:`clean_leftovers`, under the lock).

**Verified reads.** Every JSON file is checked against its schema
(:mod:`memloss.core.schemas`); weights and state are checked against the manifest's digest;
weights holding NaN or inf are refused. Problems raise :class:`RunDirError` naming the file,
the field or value, and what to do. Loading never unpickles arbitrary objects.

**One writer.** :class:`RunLock` is an OS file lock (``filelock``) on ``RUN/.lock``, released
by the OS when its process dies; a second writer gets :class:`RunLockedError` naming the
holder's PID. Every command that writes a result derived from the weights (eval, probe)
takes the lock before it reads them, so what it writes is about the checkpoint the run holds.

**Derived files name their checkpoint.** Evaluation entries, probe outputs and report data
record :func:`checkpoint_ref` (the step, the weights file and its sha256); readers compare it
with the run's current checkpoint (:func:`ref_problem`) and warn or leave stale results out.

Run directories of older versions (``model.safetensors``/``trainer_state.pt`` at the top, no
manifest) are still read (:func:`read_checkpoint` returns a ``legacy`` checkpoint).
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
import shutil
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .atomic import (atomic_write, atomic_write_text, file_digest, fsync_dir, fsync_file,
                     write_error)
from .schemas import CHECKPOINT_DIR_PATTERN, schema_problem

__all__ = [
    "RunDirError", "RunLockedError", "atomic_write", "write_json", "read_json", "append_jsonl",
    "read_jsonl", "truncate_jsonl", "save_weights", "write_weights", "load_weights",
    "weights_metadata", "save_state", "load_state", "Checkpoint", "read_checkpoint",
    "commit_checkpoint", "clean_leftovers", "RunLock", "lock_owner", "is_run_dir", "run_entries",
    "non_finite_scores", "CONFIG", "METRICS", "FINAL", "CHECKPOINT", "MODEL", "BEST", "STATE",
    "STATE_JSON", "DIAGNOSTICS", "LOCK", "LOCK_OWNER", "FOLDER_MANIFEST", "EVALUATIONS", "RUNTIME",
    "checkpoint_ref", "ref_problem", "final_problem", "is_leftover", "busy", "SWEEP_META",
    "error_path",
]

log = logging.getLogger(__name__)

CONFIG = "config.json"
METRICS = "metrics.jsonl"
FINAL = "final.json"
CHECKPOINT = "checkpoint.json"
FOLDER_MANIFEST = "manifest.json"  # the same manifest, inside its checkpoint folder
MODEL = "model.safetensors"
BEST = "best.safetensors"
STATE = "trainer_state.pt"
STATE_JSON = "trainer_state.json"  # older run directories only
DIAGNOSTICS = "diagnostics"
EVALUATIONS = "evaluations.jsonl"
RUNTIME = "runtime.jsonl"
LOCK = ".lock"
LOCK_OWNER = ".lock.json"
#: a sweep folder's own files beside its run directories (the sweep's record, each run's
#: log and, for a run that failed, its error record)
SWEEP_META = ".sweep"
_LEGACY = (MODEL, BEST, STATE, STATE_JSON)
_CKPT_RE = re.compile(CHECKPOINT_DIR_PATTERN)


class RunDirError(ValueError):
    """A run directory (or one of its files) is missing, truncated, corrupt or malformed."""


class RunLockedError(RunDirError):
    """Another process holds the run directory's lock."""


def error_path(sweep_dir: "str | os.PathLike", name: str) -> Path:
    """The error record of a sweep's failed run ``name``: ``DIR/.sweep/errors/NAME.json``
    (what failed, the traceback, the command; written by the sweep, read by the verdicts)."""
    return Path(sweep_dir) / SWEEP_META / "errors" / f"{name}.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check(kind: str, obj: Any, where: "str | os.PathLike[str]") -> Any:
    problem = schema_problem(kind, obj, where)
    if problem is not None:
        raise RunDirError(f"{problem}; the file was edited or written by another program: "
                          "restore it from a backup or re-run training")
    return obj


# --- JSON files -----------------------------------------------------------------------------
def write_json(path: "str | os.PathLike[str]", obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically (fails before touching ``path`` if ``obj``
    is not JSON-serialisable)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")


def read_json(path: "str | os.PathLike[str]", kind: str | None = None) -> Any:
    """Read a JSON file; ``kind`` (``config``, ``final``, ``checkpoint``) checks its schema."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} is missing; is {path.parent} a memloss run directory "
                          "(written by `memloss train --out`)?")
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise RunDirError(f"{path} is not valid JSON ({str(e)[:100]}); the file is corrupt or "
                          "truncated: restore it or re-run training") from None
    return obj if kind is None else _check(kind, obj, path)


def append_jsonl(path: "str | os.PathLike[str]", record: dict) -> Path:
    """Append one JSON line; the whole file is rewritten atomically (metrics files are small)."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    return atomic_write_text(path, old + json.dumps(record, allow_nan=True) + "\n")


def _jsonl_lines(path: Path) -> list[str]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise RunDirError(f"{path} is not UTF-8 text ({e}); the file is corrupt") from None
    return [line for line in text.splitlines() if line.strip()]


def read_jsonl(path: "str | os.PathLike[str]", kind: str | None = "metrics") -> list[dict]:
    """The records of a JSON-lines file ([] if it is absent), each checked against ``kind``."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(_jsonl_lines(path), 1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as e:
            raise RunDirError(f"{path} line {i} is not valid JSON ({str(e)[:100]}); the file is "
                              "corrupt") from None
        out.append(record if kind is None else _check(kind, record, f"{path} line {i}"))
    return out


def truncate_jsonl(path: "str | os.PathLike[str]", lines: int) -> int:
    """Keep the first ``lines`` records of a JSON-lines file (atomically); return how many
    were dropped. Fewer records than ``lines`` is an error (the file lost data)."""
    path = Path(path)
    kept = _jsonl_lines(path) if path.exists() else []
    for i, line in enumerate(kept[:lines], 1):  # the records kept must be sound
        try:
            _check("metrics", json.loads(line), f"{path} line {i}")
        except (json.JSONDecodeError, RecursionError) as e:
            raise RunDirError(f"{path} line {i} is not valid JSON ({str(e)[:100]}); the file is "
                              "corrupt: restore it from a backup") from None
    if len(kept) < lines:
        raise RunDirError(f"{path} has {len(kept)} records but the checkpoint covers {lines}; "
                          "the file was truncated or edited: restore it from a backup")
    if len(kept) > lines:
        atomic_write_text(path, "".join(line + "\n" for line in kept[:lines]))
    return len(kept) - lines


# --- weights and state ----------------------------------------------------------------------
def save_weights(path: "str | os.PathLike[str]", tensors: Mapping[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> Path:
    """Save tensors as safetensors, atomically (contiguous CPU copies)."""
    return atomic_write(path, lambda tmp: write_weights(tmp, tensors, metadata))


def _verify(path: Path, entry: Mapping[str, Any] | None) -> None:
    if not path.is_file():
        raise RunDirError(f"{path} is missing; the run has no saved weights yet (train it, or "
                          "resume it with `memloss train --resume`)")
    if entry is None:
        return
    size = path.stat().st_size
    if size != entry["bytes"] or file_digest(path) != entry["sha256"]:
        raise RunDirError(f"{path} does not match the digest recorded in its checkpoint "
                          f"manifest ({size} bytes, expected {entry['bytes']}): the file was "
                          "changed or damaged after it was written; restore it or re-run training")


def load_weights(path: "str | os.PathLike[str]", entry: Mapping[str, Any] | None = None, *,
                 finite: bool = True) -> dict[str, torch.Tensor]:
    """Load a safetensors file; ``entry`` (``{"sha256", "bytes"}`` from the manifest) is
    checked first; ``finite`` refuses weights holding NaN or inf."""
    path = Path(path)
    _verify(path, entry)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise RunDirError(f"{path} is truncated or corrupt ({str(e)[:100]}); restore it from a "
                          "backup or re-run training") from None
    if finite:
        bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise RunDirError(f"{path} holds non-finite weights ({', '.join(bad[:3])}); these "
                              "weights cannot be used: resume from an earlier checkpoint or "
                              "re-run training")
    return tensors


def weights_metadata(path: "str | os.PathLike[str]") -> dict[str, str]:
    """The string metadata stored in a safetensors file (e.g. the training step)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise RunDirError(f"{path} is truncated or corrupt ({str(e)[:100]}); restore it or "
                          "re-run training") from None


def save_state(path: "str | os.PathLike[str]", state: dict) -> Path:
    """Save a dict of tensors and plain containers (loadable with ``weights_only=True``)."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


_STATE_TYPES = {"optimizer": dict, "mask_rng": torch.Tensor, "data_rng": torch.Tensor,
                "hx": list, "hx_tuple": bool, "loop": dict}


def load_state(path: "str | os.PathLike[str]", entry: Mapping[str, Any] | None = None) -> dict:
    """Load a trainer state (``weights_only``), checked against ``entry`` and its structure."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} is missing; this run cannot be resumed (it has no trainer "
                          "state); start a new run instead")
    _verify(path, entry)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated/corrupt zips
        raise RunDirError(f"{path} is truncated or corrupt ({type(e).__name__}: {str(e)[:100]}); "
                          "this run cannot be resumed; start a new run") from None
    if not isinstance(state, dict):
        raise RunDirError(f"{path}: the top level is a {type(state).__name__}, not a trainer "
                          "state; this run cannot be resumed")
    for key, kind in _STATE_TYPES.items():
        if not isinstance(state.get(key), kind):
            raise RunDirError(f"{path}: field {key} is missing or not a {kind.__name__}; this "
                              "run cannot be resumed")
    if not all(isinstance(h, torch.Tensor) for h in state["hx"]):
        raise RunDirError(f"{path}: field hx must hold tensors; this run cannot be resumed")
    _check("loop", state["loop"], f"{path} (loop)")
    return state


# --- checkpoints ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Checkpoint:
    """The committed checkpoint of a run: its manifest and where its files are.

    ``legacy``: an older run directory without a manifest (files at the top, no digests)."""

    run_dir: Path
    manifest: dict
    legacy: bool = False

    @property
    def folder(self) -> Path:
        return self.run_dir if self.legacy else self.run_dir / self.manifest["dir"]

    @property
    def step(self) -> int | None:
        return self.manifest.get("step")

    def has(self, name: str) -> bool:
        return name in self.manifest["files"]

    def path(self, name: str) -> Path:
        return self.folder / name

    def entry(self, name: str) -> dict | None:
        """The manifest's digest entry of a file (None for a legacy checkpoint)."""
        return None if self.legacy else self.manifest["files"].get(name)

    def weights(self, name: str = MODEL) -> dict[str, torch.Tensor]:
        """The verified, finite weights of ``MODEL`` or ``BEST``."""
        if not self.has(name):
            raise RunDirError(f"{self.run_dir} has no {name} in its checkpoint (no validation "
                              "improved yet); use the last weights")
        return load_weights(self.path(name), self.entry(name))

    def state(self) -> dict:
        return load_state(self.path(STATE), self.entry(STATE))


def _folder_checkpoint(run_dir: Path) -> Checkpoint | None:
    """Without checkpoint.json: the newest checkpoint folder whose own manifest is sound
    (a kill between a first commit's folder rename and its manifest, or a deleted
    checkpoint.json)."""
    found = []
    for p in run_dir.iterdir():
        if p.is_dir() and _CKPT_RE.match(p.name) and (p / FOLDER_MANIFEST).is_file():
            try:
                manifest = read_json(p / FOLDER_MANIFEST, "checkpoint")
            except RunDirError:
                continue
            if manifest["dir"] == p.name:
                found.append(Checkpoint(run_dir, manifest))
    if not found:
        return None
    ckpt = max(found, key=lambda c: (c.manifest["step"], c.manifest.get("created", "")))
    log.warning("%s has no %s; using the complete checkpoint in %s (step %d)", run_dir,
                CHECKPOINT, ckpt.folder.name, ckpt.step)
    return ckpt


def read_checkpoint(run_dir: "str | os.PathLike[str]") -> Checkpoint | None:
    """The run's committed checkpoint (manifest checked), a legacy one, or None if the run
    has none yet. Without checkpoint.json, the newest complete checkpoint folder (each
    holds a copy of its manifest) is the checkpoint."""
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT
    if path.exists():
        manifest = read_json(path, "checkpoint")
        ckpt = Checkpoint(run_dir, manifest)
        if not ckpt.folder.is_dir():
            raise RunDirError(f"{ckpt.folder} is missing although {path} names it; the "
                              "checkpoint was deleted: restore it or re-run training")
        return ckpt
    if run_dir.is_dir():
        adopted = _folder_checkpoint(run_dir)
        if adopted is not None:
            return adopted
    if (run_dir / MODEL).is_file() or (run_dir / STATE).is_file():
        files = {n: {} for n in (MODEL, STATE, BEST) if (run_dir / n).is_file()}
        return Checkpoint(run_dir, {"files": files}, legacy=True)
    return None


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # checkpoint files are never modified in place: share the bytes
    except OSError:
        shutil.copyfile(src, dst)


def write_weights(path: "str | os.PathLike[str]", tensors: Mapping[str, torch.Tensor],
                  metadata: dict[str, str] | None = None) -> None:
    """Write tensors as safetensors to ``path`` as it is (contiguous CPU copies)."""
    data = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(data, str(path), metadata=metadata)


def commit_checkpoint(run_dir: "str | os.PathLike[str]", step: int, *,
                      model: Mapping[str, torch.Tensor], state: dict,
                      best: "Mapping[str, torch.Tensor] | Checkpoint | None",
                      record: Mapping[str, Any]) -> Checkpoint:
    """Write a checkpoint and make it the run's checkpoint with one rename.

    ``model``: the weights; ``state``: the trainer state (``torch.save``); ``best``: the best
    validation weights, or the earlier checkpoint whose best file is kept unchanged
    (hard-linked), or None. ``record`` holds the rest of the manifest (``epoch``,
    ``metrics_lines``, ``best_step``, ``train``, ``net``, ``loop``). The previous checkpoint
    stays until the manifest names the new one; then it is removed.
    """
    run_dir = Path(run_dir)
    name = f"checkpoint-{step:09d}-{secrets.token_hex(4)}"
    tmp = run_dir / f".{name}.tmp"
    final = run_dir / name
    meta = {"step": str(step)}
    writers: dict[str, Callable[[Path], None]] = {
        MODEL: lambda p: write_weights(p, model, meta),
        STATE: lambda p: torch.save(state, p)}
    if isinstance(best, Checkpoint):
        writers[BEST] = lambda p: _link_or_copy(best.path(BEST), p)
    elif best is not None:
        writers[BEST] = lambda p: write_weights(p, best, meta)
    tmp.mkdir()
    try:
        files: dict[str, dict] = {}
        for fname, write in writers.items():
            target = tmp / fname
            try:
                write(target)
                fsync_file(target)
            except Exception as e:
                raise write_error(target, e) from None
            files[fname] = {"sha256": file_digest(target), "bytes": target.stat().st_size}
        manifest = {"format": 1, "step": step, "dir": name, "files": files, **record,
                    "created": _now()}
        _check("checkpoint", manifest, run_dir / CHECKPOINT)
        atomic_write_text(tmp / FOLDER_MANIFEST, json.dumps(manifest, indent=2) + "\n")
        fsync_dir(tmp)
        os.rename(tmp, final)
        fsync_dir(run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        write_json(run_dir / CHECKPOINT, manifest)  # the commit point
    except BaseException:
        if _committed_dir(run_dir) != name:
            shutil.rmtree(final, ignore_errors=True)
        raise
    _remove_stale(run_dir, name)
    return Checkpoint(run_dir, manifest)


def _committed_dir(run_dir: Path) -> str | None:
    try:
        manifest = json.loads((run_dir / CHECKPOINT).read_text(encoding="utf-8"))
        name = manifest.get("dir") if isinstance(manifest, dict) else None
        return name if isinstance(name, str) else None
    except (OSError, ValueError):
        return None


def _remove_stale(run_dir: Path, current: str) -> list[str]:
    """Remove checkpoint folders other than ``current`` and an older version's files."""
    removed = []
    for p in run_dir.iterdir():
        if p.is_dir() and _CKPT_RE.match(p.name) and p.name != current:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
        elif p.name in _LEGACY and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


#: the files of a run directory memloss writes through :func:`atomic_write` (their temp files
#: are ``.NAME.XXXXXXXX.tmp``, eight random characters of ``tempfile.mkstemp``)
_OWN_FILES = (CONFIG, METRICS, FINAL, CHECKPOINT, LOCK_OWNER, EVALUATIONS, RUNTIME, MODEL, BEST,
              STATE)
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")
_STAGE_RE = re.compile(r"^\." + CHECKPOINT_DIR_PATTERN[1:-1] + r"\.tmp$")


def is_leftover(p: Path, *, diagnostics: bool = False) -> bool:
    """A temp file or folder an interrupted write of memloss left: a checkpoint being staged
    (``.checkpoint-<step>-<id>.tmp/``) or the temp file of one of the run's own files
    (``.config.json.<8 random characters>.tmp``; in ``diagnostics/`` any probe output). A
    user's file, even one named ``.config.json.tmp``, is never one."""
    if _STAGE_RE.match(p.name):
        return p.is_dir() and not p.is_symlink()
    m = _TEMP_RE.match(p.name)
    if m is None or not p.is_file() or p.is_symlink():
        return False
    name = m.group("name")
    return name.endswith((".csv", ".json")) if diagnostics else name in _OWN_FILES


def _is_leftover(p: Path) -> bool:
    return is_leftover(p)


def clean_leftovers(run_dir: "str | os.PathLike[str]") -> list[str]:
    """Remove what interrupted writes left in a run directory: memloss's own temp files and
    staged checkpoint folders (:func:`is_leftover`, also in ``diagnostics/``) and checkpoint
    folders the manifest does not name.
    Call it only while holding the run's lock. Returns the names removed."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    removed = []
    for folder in (run_dir, run_dir / DIAGNOSTICS):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if is_leftover(p, diagnostics=folder.name == DIAGNOSTICS):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(str(p.relative_to(run_dir)))
    try:
        current = read_checkpoint(run_dir)
    except RunDirError:  # a damaged manifest: touch no checkpoint, the error comes later
        current = None
    if current is not None and not current.legacy:
        removed += _remove_stale(run_dir, current.folder.name)
    if removed:
        log.info("%s: removed leftovers of an interrupted write: %s", run_dir,
                 ", ".join(sorted(removed)[:5]) + (" ..." if len(removed) > 5 else ""))
    return removed


# --- the run lock ---------------------------------------------------------------------------
def lock_owner(run_dir: "str | os.PathLike[str]") -> dict:
    """Who holds (or last held) the run's lock: ``pid``, ``host``, ``purpose``, ``since``."""
    try:
        owner = json.loads((Path(run_dir) / LOCK_OWNER).read_text(encoding="utf-8"))
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}


def busy(run_dir: "str | os.PathLike[str]") -> str | None:
    """Who is writing the run now (``"process PID on HOST (PURPOSE, since T)"``), or None.
    Read from ``.lock.json`` without taking the lock (a reader never blocks a writer); a
    holder on this host that no longer runs (killed) is not busy."""
    owner = lock_owner(run_dir)
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    if owner.get("host") == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    return (f"process {pid} on {owner.get('host')} ({owner.get('purpose')}, since "
            f"{owner.get('since')})")


class RunLock:
    """An exclusive OS lock on a run directory while a process writes it (a context manager).

    The lock is ``flock`` on ``RUN/.lock`` (via ``filelock``), so the OS releases it when the
    process dies, even by SIGKILL. The holder writes ``RUN/.lock.json`` (pid, host, purpose,
    time) so a second writer is told whom it is waiting for.
    """

    def __init__(self, run_dir: "str | os.PathLike[str]", purpose: str) -> None:
        self.run_dir = Path(run_dir)
        self.purpose = purpose
        self._lock = FileLock(str(self.run_dir / LOCK), timeout=0)

    def acquire(self) -> "RunLock":
        try:
            self._lock.acquire()
        except Timeout:
            owner = lock_owner(self.run_dir)
            who = (f"process {owner.get('pid')} on {owner.get('host')} ({owner.get('purpose')}, "
                   f"since {owner.get('since')})" if owner else "another process")
            raise RunLockedError(f"{self.run_dir} is busy: it is being written by {who}; try "
                                 "again when that has finished (two writers would corrupt the "
                                 "run), or stop that process") from None
        try:
            write_json(self.run_dir / LOCK_OWNER, {"pid": os.getpid(), "host": socket.gethostname(),
                                                   "purpose": self.purpose, "since": _now()})
        except BaseException:
            self._lock.release()
            raise
        return self

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:
            if lock_owner(self.run_dir).get("pid") == os.getpid():
                (self.run_dir / LOCK_OWNER).unlink(missing_ok=True)
        except OSError:
            pass
        finally:
            self._lock.release()  # the lock file itself stays: removing it would race a waiter

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# --- the directory as a whole ---------------------------------------------------------------
def is_run_dir(path: "str | os.PathLike[str]") -> bool:
    return (Path(path) / CONFIG).is_file()


def run_entries(path: "str | os.PathLike[str]") -> list[str]:
    """The entries of a folder other than the lock files and leftovers of interrupted
    writes (what makes a folder "not empty" for a new run)."""
    p = Path(path)
    return sorted(e.name for e in p.iterdir()
                  if e.name not in (LOCK, LOCK_OWNER) and not _is_leftover(e))


def non_finite_scores(scores: Mapping[str, Mapping[str, float]]) -> list[str]:
    """``mode.metric`` names of the non-finite values in ``{mode: {metric: value}}``."""
    return [f"{m}.{k}" for m, vals in scores.items() for k, v in vals.items()
            if isinstance(v, float) and not math.isfinite(v)]


# --- what derived files came from ------------------------------------------------------------
def checkpoint_ref(ckpt: Checkpoint, name: str = MODEL) -> dict[str, Any]:
    """Which weights a derived result (an evaluation, a probe output, report data) came from:
    ``{"step", "weights", "sha256"}`` of the checkpoint's ``name`` file (``model.safetensors``
    or ``best.safetensors``). The digest is the manifest's (a legacy or imported run's file
    is hashed)."""
    entry = ckpt.entry(name)
    digest = entry["sha256"] if entry else file_digest(ckpt.path(name))
    step: Any = ckpt.step
    if ckpt.legacy:
        raw = weights_metadata(ckpt.path(name)).get("step")
        step = int(raw) if raw is not None and raw.isdigit() else None
    elif name == BEST:
        step = ckpt.manifest.get("best_step")
    return {"step": step, "weights": name, "sha256": digest}


def ref_problem(run_dir: "str | os.PathLike[str]", ref: Any) -> str | None:
    """Why ``ref`` (a :func:`checkpoint_ref` a derived file recorded) is not the run's current
    checkpoint, or None when it is. A missing ``ref`` (written by an older memloss) is a
    problem too: nothing says which weights it measured."""
    if not isinstance(ref, Mapping) or not isinstance(ref.get("sha256"), str):
        return "it records no checkpoint (written by an older memloss or another program)"
    try:
        ckpt = read_checkpoint(run_dir)
    except RunDirError as e:
        return f"the run's checkpoint cannot be read ({str(e)[:120]})"
    name = ref.get("weights", MODEL)
    if ckpt is None or name not in (MODEL, BEST) or not ckpt.has(name):
        return "the run no longer holds the weights it came from"
    current = checkpoint_ref(ckpt, name)
    if current["sha256"] != ref["sha256"]:
        return (f"it came from the weights of step {ref.get('step')}, but the run's checkpoint "
                f"now holds step {current['step']}")
    return None


def final_problem(run_dir: "str | os.PathLike[str]", final: Mapping[str, Any]) -> str | None:
    """Why a finished run's final.json is not about its current checkpoint (the run was
    resumed and has not finished again), or None."""
    step = final.get("weights_step")
    if not final or step is None or final.get("imported"):
        return None
    try:
        ckpt = read_checkpoint(run_dir)
    except RunDirError as e:
        return f"the run's checkpoint cannot be read ({str(e)[:120]})"
    if ckpt is None or ckpt.legacy:
        return None
    have = ckpt.manifest.get("best_step") if final.get("weights") == "best" else ckpt.step
    if have != step:
        return (f"final.json was scored with the {final.get('weights')} weights of step {step}, "
                f"but the checkpoint now holds step {have} (the run was resumed and has not "
                "finished)")
    return None
