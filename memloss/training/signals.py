"""Termination signals while a run trains: SIGTERM (what SLURM and most schedulers send before
a kill, and what a preempted job gets) and SIGUSR1/SIGUSR2 (the signals a scheduler is told to
send ahead of a time limit or a preemption, e.g. ``sbatch --signal=USR2@90``) end training
as Ctrl-C does: a checkpoint being written is completed, the last complete checkpoint is
kept, and :class:`Terminated` is raised, which ``memloss train`` reports in one line with
exit status ``128 + signal number`` (143 for SIGTERM, 138 for SIGUSR1, 140 for SIGUSR2; 130
for Ctrl-C), so a launcher can tell a stop it can resume from a failure (1 or 2).

A signal whose handler someone else installed is left to it: under submitit, SIGUSR2
checkpoints and requeues the job (:class:`memloss.sweep.job.SweepJob`) and SIGTERM is
ignored, as submitit arranges. Handlers can only be set in the main thread; elsewhere
nothing changes.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

__all__ = ["Terminated", "TERMINATION_SIGNALS", "stop_on_termination", "held", "exit_code"]

#: the signals handled like Ctrl-C while training (those this platform has)
TERMINATION_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGUSR1", "SIGUSR2") if hasattr(signal, name))


def exit_code(signum: int) -> int:
    """The exit status of a run stopped by ``signum``: ``128 + signum``, as a shell reports it."""
    return 128 + int(signum)


class Terminated(KeyboardInterrupt):
    """Training was stopped by a termination signal; the last complete checkpoint is kept.
    ``exit_code`` is ``128 + signum``. A KeyboardInterrupt, so that every cleanup Ctrl-C
    gets (the lock, a start without a checkpoint) runs for it too."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.exit_code = exit_code(signum)
        super().__init__(f"stopped by {signal.Signals(self.signum).name}")


def _raise(signum: int, frame: Any) -> None:
    raise Terminated(signum)


_OURS: set[int] = set()  # signals whose handler is _raise, set by stop_on_termination


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def stop_on_termination() -> Iterator[None]:
    """While the block runs, each termination signal still at its default action raises
    :class:`Terminated` (at a safe point: see :func:`held`); others' handlers stay."""
    if not _main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in TERMINATION_SIGNALS}
    mine = [s for s, h in old.items() if h is signal.SIG_DFL]
    for s in mine:
        signal.signal(s, _raise)
        _OURS.add(s)
    try:
        yield
    finally:
        for s in mine:
            signal.signal(s, old[s])
            _OURS.discard(s)


@contextmanager
def held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and the termination signals :func:`stop_on_termination` handles
    until the block is done, then raise the first one caught (KeyboardInterrupt or
    :class:`Terminated`): a checkpoint being written is completed first."""
    if not _main_thread():
        yield
        return
    caught: list[int] = []
    signals = [signal.SIGINT, *sorted(_OURS)]
    old = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in signals}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if not caught:
        return
    first = caught[0]
    if first == signal.SIGINT:
        if old[signal.SIGINT] is not signal.SIG_IGN:
            raise KeyboardInterrupt
        return
    raise Terminated(first)
