"""Fault injection for run directories: run the command line in a forked child, kill it
with SIGKILL or fail one of its file operations with ENOSPC at a chosen point, then check
what it left and that the run continues bit for bit.

The child counts every file-system operation a run makes (the points where a kill or a full
disk can strike): ``mkdir``, writing a weights or state file, ``fsync`` of a file or a
folder, ``link``, ``rename``/``replace``, ``unlink``, ``rmdir``. A fault plan names the
operation to strike (``kill_at``, ``fail_at``); ``torn`` truncates the file being synced to
half before the kill (a write torn by the kill). Each operation is logged to a file as it
happens, so the log survives the kill.
"""
from __future__ import annotations

import contextlib
import errno
import faulthandler
import hashlib
import io
import json
import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

#: a run small enough for hundreds of kills: temporal order, 2 steps per epoch, 2 epochs,
#: a checkpoint after every step (eval_every=1), plateau schedule, best-weights restore
TINY = ["temporal-order", "--set", "task.train_size=64", "--set", "task.valid_size=16",
        "--set", "task.test_size=16", "--set", "hidden_size=8", "--set", "batch_size=32",
        "--set", "eval_batch_size=64", "--set", "epochs=2", "--set", "eval_every=1",
        "--set", "optimizer=momentum", "--set", "schedule=plateau", "--set", "lr_decay=0.5",
        "--set", "progress=false", "--scheme", "semeniuta:p=0.25"]

#: operations that can fail with ENOSPC (removing files cannot)
WRITE_OPS = ("mkdir", "save_file", "torch.save", "fsync", "link", "rename", "replace")


@dataclass
class Plan:
    """Where to strike: the 1-based index of an operation, or None."""

    kill_at: int | None = None
    fail_at: int | None = None
    torn: bool = False
    interrupt_at: int | None = None  # send SIGINT (Ctrl-C) to itself there


@dataclass
class Result:
    """What a child did: exit code (or -9 when killed), its stderr, the operations it made."""

    code: int
    err: str
    ops: list[dict] = field(default_factory=list)

    @property
    def killed(self) -> bool:
        return self.code == -signal.SIGKILL


def _install(plan: Plan, log_fd: int) -> None:
    """Wrap the file operations in the child (never undone: the child exits)."""
    import safetensors.torch

    from memloss.core import runfiles

    count = [0]

    def strike(kind: str, path: Any, fd: int | None = None) -> None:
        count[0] += 1
        name = os.path.basename(os.fspath(path)) if path is not None else ""
        if fd is not None:
            try:
                name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                pass
        os.write(log_fd, (json.dumps({"i": count[0], "op": kind, "name": name}) + "\n").encode())
        if count[0] == plan.kill_at:
            if plan.torn and fd is not None:
                target = os.readlink(f"/proc/self/fd/{fd}")
                # only a file being written can be torn (not a hard link to a kept one)
                if os.path.isfile(target) and os.stat(target).st_nlink == 1:
                    os.truncate(target, os.path.getsize(target) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        if count[0] == plan.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        if count[0] == plan.fail_at and kind in WRITE_OPS:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path or name))

    def wrap(module: Any, attr: str, kind: str, path_arg: int = 0) -> None:
        original = getattr(module, attr)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if kind == "fsync":
                strike(kind, None, fd=args[0])
            else:
                strike(kind, args[path_arg] if len(args) > path_arg else None)
            return original(*args, **kwargs)

        setattr(module, attr, wrapper)

    for attr in ("mkdir", "link", "rename", "replace", "unlink", "rmdir"):
        wrap(os, attr, attr, 1 if attr in ("link", "rename", "replace") else 0)
    wrap(os, "fsync", "fsync")
    wrap(runfiles, "save_file", "save_file", 1)
    wrap(safetensors.torch, "save_file", "save_file", 1)
    wrap(torch, "save", "torch.save", 1)


def output_to(path: Path) -> None:
    """In a child: send stdout and stderr (the descriptors and Python's streams, which a
    test runner may have replaced) to ``path``."""
    err = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(err, 2)
    os.dup2(err, 1)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), write_through=True)
    sys.stdout = sys.stderr


#: how long a child may run before the harness calls it hung (kills it and says so), so a
#: deadlock fails its test instead of stalling the whole run
HANG_SECONDS = 600.0
#: the exit code a hung child is given (timeout(1)'s); the text says "Traceback", so every
#: judge counts it as a defect, never as the expected kill or a clear error
HUNG = 124


def _wait(pid: int, seconds: float, poll: float = 0.01) -> "int | None":
    """The child's wait status once it ends within ``seconds``, else None (it still runs)."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(poll)
    return None


def wait_or_kill(pid: int, seconds: float) -> "int | None":
    """The child's wait status, or None after killing it when ``seconds`` passed first (a
    child of :func:`in_child` first writes every thread's stack to its stderr file)."""
    import time

    status = _wait(pid, seconds)
    if status is not None:
        return status
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGUSR1)
        time.sleep(2)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def as_child() -> None:
    """What every child the harness forks does first: one torch thread, and tqdm locks of its
    own. tqdm's write lock is a multiprocessing RLock made once per process and shared by
    every child forked after it: a child SIGKILLed while drawing a bar left it held, and the
    next child hung on its first bar (seen in ``test_sigkill_at_many_random_points``). A real
    run is a process of its own."""
    import multiprocessing
    import threading

    from tqdm.std import TqdmDefaultWriteLock, tqdm

    torch.set_num_threads(1)
    TqdmDefaultWriteLock.mp_lock = multiprocessing.RLock()
    TqdmDefaultWriteLock.th_lock = threading.RLock()
    tqdm.set_lock(TqdmDefaultWriteLock())


def in_child(fn: Callable[[], int], plan: Plan | None, log_path: Path,
             kill_after: float | None = None) -> Result:
    """Run ``fn`` (returning an exit code) in a forked child under ``plan``; ``kill_after``:
    SIGKILL it from here after that many seconds (if it still runs)."""
    err_path = log_path.with_suffix(".err")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            as_child()
            # Ctrl-C as a shell delivers it (a test run may have changed the handler)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            output_to(err_path)
            faulthandler.register(signal.SIGUSR1, all_threads=True)  # where a hung child is
            if plan is not None:
                _install(plan, fd)
            code = fn()
        except BaseException:  # a traceback out of fn is what the tests look for
            import traceback

            traceback.print_exc()
            code = 71
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os._exit(code)
    status = None
    if kill_after is not None:
        status = _wait(pid, kill_after, poll=0.005)
        if status is None:
            os.kill(pid, signal.SIGKILL)
    if status is None:
        status = wait_or_kill(pid, HANG_SECONDS)
        if status is None:
            stacks = err_path.read_text()[-4000:] if err_path.exists() else ""
            return Result(HUNG, f"Traceback (most recent call last): none: the child hung and "
                                f"was killed after {HANG_SECONDS:g} s; its threads:\n{stacks}", [])
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    ops = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()] \
        if log_path.exists() else []
    return Result(code, err_path.read_text() if err_path.exists() else "", ops)


def cli(*argv: str) -> Callable[[], int]:
    """``memloss ARGV`` as a child's function (logging quiet, errors to stderr)."""
    def run() -> int:
        import logging

        from memloss.cli import main

        logging.disable(logging.INFO)
        return main(list(argv))

    return run


def start(run_dir: Path) -> Callable[[], int]:
    return cli("train", *TINY, "--out", str(run_dir))


def resume(run_dir: Path) -> Callable[[], int]:
    return cli("train", "--resume", str(run_dir))


def recover(run_dir: Path) -> Callable[[], int]:
    """What a user does after a crash: resume the run, or start it again when it never got
    as far as writing its config."""
    from memloss.core.runfiles import is_run_dir

    return resume(run_dir) if is_run_dir(run_dir) else start(run_dir)


# --- comparing runs -------------------------------------------------------------------------
def snapshot(run_dir: Path) -> dict:
    """Everything a finished run's results consist of: final.json, the metrics records (less
    their timing), the checkpoint's weights, best weights and state, the config's train
    section. Equal snapshots = bit-exact runs."""
    from memloss.core import runfiles as rf

    ckpt = rf.read_checkpoint(run_dir)
    assert ckpt is not None
    state = ckpt.state()
    digest = hashlib.sha256()
    for name in (rf.MODEL, rf.BEST):
        if ckpt.has(name):
            for k, v in sorted(ckpt.weights(name).items()):
                digest.update(name.encode() + k.encode() + v.numpy().tobytes())
    for key in ("mask_rng", "data_rng"):
        digest.update(state[key].numpy().tobytes())
    return {"final": rf.read_json(run_dir / rf.FINAL),
            "metrics": [{k: v for k, v in r.items() if k != "seconds"}
                        for r in rf.read_jsonl(run_dir / rf.METRICS)],
            "loop": state["loop"], "tensors": digest.hexdigest(),
            "train": rf.read_json(run_dir / rf.CONFIG)["train"]}


def leftovers(run_dir: Path) -> list[str]:
    """Temp files and stale checkpoint folders a finished run should not hold."""
    out = [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    folders = [p.name for p in run_dir.iterdir() if p.name.startswith("checkpoint-")]
    return out + (folders if len(folders) != 1 else [])


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (lock files excluded)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in (".lock", ".lock.json")}


def commits(ops: list[dict]) -> list[int]:
    """The operation index at which each checkpoint became the committed one (the
    ``replace`` of checkpoint.json)."""
    return [op["i"] for op in ops if op["op"] == "replace" and op["name"] == "checkpoint.json"]


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
