"""Crash cases: a SIGKILL or ENOSPC at one file operation of a tiny training run, then the
check that the committed checkpoint survived and the run continues bit for bit."""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .harness import (TINY, Plan, Result, commits, fresh, in_child, leftovers, recover, snapshot,
                      start)
from .outcomes import Outcome, judge_error

_STEP = re.compile(r"checkpoint-0*([0-9]+)-")


@dataclass(frozen=True)
class Reference:
    """A straight run of the tiny config: its results and its file operations."""

    snapshot: dict
    ops: list[dict]
    seconds: float  # how long the straight run took in a child

    def committed_step(self, before: int) -> int | None:
        """The step of the last checkpoint committed before operation ``before``."""
        step = None
        folder = None
        for op in self.ops:
            if op["i"] >= before:
                break
            if op["op"] == "rename" and _STEP.match(op["name"]):
                folder = op["name"]
            if op["i"] in commits(self.ops) and folder is not None:
                step = int(_STEP.match(folder).group(1))  # type: ignore[union-attr]
        return step

    def commit_ops(self, which: int) -> list[dict]:
        """The operations of the ``which``-th checkpoint commit (1-based): from the end of
        the previous commit's cleanup to the manifest's rename and this commit's cleanup."""
        ends = commits(self.ops)
        lo = ends[which - 2] if which >= 2 else 0
        hi = ends[which] if which < len(ends) else ends[-1]
        # stop before the next commit's mkdir of its temp folder
        span = [op for op in self.ops if lo < op["i"] < hi]
        for j, op in enumerate(span):
            if op["op"] == "mkdir" and op["i"] > ends[which - 1]:
                return span[:j]
        return span


def reference(work: Path) -> Reference:
    """Warm this process up (imports and first-call costs, which forked children then share)
    and record a straight run in a child."""
    warm = fresh(work / "warm-up") / "run"
    import logging

    from memloss.cli import main

    logging.disable(logging.INFO)
    try:
        assert main(["train", *TINY, "--out", str(warm)]) == 0
    finally:
        logging.disable(logging.NOTSET)
    run = fresh(work / "reference") / "run"
    t0 = time.perf_counter()
    result = in_child(start(run), Plan(), work / "reference.log")
    seconds = time.perf_counter() - t0
    assert result.code == 0, result.err
    return Reference(snapshot(run), result.ops, seconds)


def _after(run: Path, ref: Reference, struck: int, work: Path, first: Result) -> Outcome:
    """Check what the struck child left and continue the run; compare with the reference."""
    from memloss.core import runfiles as rf

    want = ref.committed_step(struck)
    try:
        ckpt = rf.read_checkpoint(run) if run.exists() else None
    except ValueError as e:
        return Outcome("data-loss", f"checkpoint unreadable after the fault: {e}")
    if want is not None and (ckpt is None or ckpt.step is None or ckpt.step < want):
        return Outcome("data-loss", f"committed step {want} lost (now {ckpt and ckpt.step})")
    again = in_child(recover(run), None, work / "recover.log")
    if again.code != 0:
        judged = judge_error(again.code, again.err)
        if judged.category == "clear" and want is not None:
            return Outcome("data-loss", f"cannot continue from step {want}: {judged.detail}")
        return judged if judged.category != "clear" else Outcome("data-loss", judged.detail)
    if snapshot(run) != ref.snapshot:
        return Outcome("silent", "the continued run differs from the straight one")
    junk = leftovers(run)
    if junk:
        return Outcome("silent", f"leftovers after the continued run: {junk}")
    detail = "resumed bit-exactly" if ckpt is not None else "started again"
    if first.code not in (-9, 0):
        detail = f"{judge_error(first.code, first.err).detail} -> {detail}"
    return Outcome("ok", detail)


def kill_case(work: Path, ref: Reference, at: int, torn: bool = False) -> Outcome:
    """SIGKILL the trainer at operation ``at`` (``torn``: the file being synced is cut to
    half first), then continue the run."""
    run = fresh(work) / "run"
    first = in_child(start(run), Plan(kill_at=at, torn=torn), work / "kill.log")
    if not first.killed:
        return Outcome("traceback", f"not killed at {at}: exit {first.code} {first.err[-200:]}")
    return _after(run, ref, at, work, first)


def enospc_case(work: Path, ref: Reference, at: int) -> Outcome:
    """Fail operation ``at`` with ENOSPC; the command must stop with one clear line (or
    finish correctly if the failure was harmless), and the run must continue bit for bit."""
    run = fresh(work) / "run"
    first = in_child(start(run), Plan(fail_at=at), work / "enospc.log")
    if first.code != 0:
        judged = judge_error(first.code, first.err, "No space left on device")
        if judged.category != "clear":
            return judged
    return _after(run, ref, at, work, first)


def random_kill_case(work: Path, ref: Reference, seed: int) -> Outcome:
    """SIGKILL at a random operation chosen from the whole run (seeded)."""
    import random

    at = random.Random(seed).randint(1, len(ref.ops))
    out = kill_case(work, ref, at, torn=random.Random(seed + 1).random() < 0.5)
    return Outcome(out.category, f"op {at}: {out.detail}")


def timed_kill_case(work: Path, ref: Reference, seed: int) -> Outcome:
    """SIGKILL the trainer from this process after a random delay (seeded) within the time a
    straight run takes, wherever it is, then continue the run."""
    import random

    delay = random.Random(seed).uniform(0.0, ref.seconds)
    run = fresh(work) / "run"
    first = in_child(start(run), Plan(), work / "timed.log", kill_after=delay)
    if first.code == 0:
        return Outcome("ok", f"{delay:.2f}s: finished before the kill")
    if not first.killed:
        return judge_error(first.code, first.err)
    out = _after(run, ref, len(first.ops) + 1, work, first)
    return Outcome(out.category, f"{delay:.2f}s, after op {len(first.ops)}: {out.detail}")


def mount_tmpfs(point: Path, size: str) -> bool:
    """Mount a tmpfs of ``size`` (e.g. "64k") at ``point``; False where this is not allowed."""
    import subprocess

    point.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                          capture_output=True)
    return done.returncode == 0


def umount(point: Path) -> None:
    import subprocess

    subprocess.run(["umount", str(point)], capture_output=True)


def full_disk_case(work: Path, ref: Reference, size_kib: int) -> Outcome | None:
    """Train into a tmpfs of ``size_kib`` KiB; where it fills, the command must stop with one
    clear line; after the disk is enlarged the run must continue bit for bit. None where no
    tmpfs can be mounted."""
    import subprocess

    disk = fresh(work) / "disk"
    if not mount_tmpfs(disk, f"{size_kib}k"):
        return None
    try:
        run = disk / "run"
        first = in_child(start(run), None, work / "disk.log")
        if first.code != 0:
            judged = judge_error(first.code, first.err, "No space left on device")
            if judged.category != "clear":
                return judged
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True,
                       capture_output=True)
        out = _after(run, ref, len(first.ops) + 1, work, first)
        first_words = "finished" if first.code == 0 else "disk full"
        return Outcome(out.category, f"{size_kib} KiB, {first_words}: {out.detail}")
    finally:
        umount(disk)


_REFS: dict[str, Reference] = {}


def reference_for(tmp: Path) -> Reference:
    """The reference run of this process (made once)."""
    if "ref" not in _REFS:
        import tempfile

        _REFS["ref"] = reference(Path(tempfile.mkdtemp(prefix="memloss-reference-")))
    return _REFS["ref"]
