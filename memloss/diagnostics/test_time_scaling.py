"""``test-time-scaling``: the task metric per inference mode over sequence lengths.

Shows the scaling mismatch of Semeniuta's section 3.2 / Table 1: a net whose state is
dropped (Moon's per-sequence cell dropout) can fit the training data with masks on and
still fail under deterministic inference, and more so on sequences longer than trained on.
Modes: ``deterministic`` (the net's own test-time factor), ``other-scaling`` (the other
convention's factor), ``mc`` (K sampled mask sets, probabilities averaged) and
``train-mode`` (one sampled mask set). The sweep sets the task's ``length`` parameter to
``lengths`` if given, else to ``factors`` times its current value (tasks that are
dataclasses with a ``length`` field are rebuilt with ``dataclasses.replace``; other tasks
are evaluated as they are). The ``length`` column is the number of time steps of the
longest sequence actually scored (:func:`measured_lengths`): a sequence's real steps in a
padded batch, and for a streamed task (batches that carry the state on) a stream column's
steps through every batch scored, not one batch's width. The summary's ``measured`` says,
per split and length, in words what was measured: the shortest and longest sequence, and
for a stream its segments (at most the task's ``bptt`` steps each). Each mode scores the batches in the task's order
through the shared evaluation (:func:`memloss.tasks.evaluation.score_batches`): a streamed
task's state is carried from batch to batch, and each ``mc`` network keeps its masks for
the whole sweep point (Gal eq. 4), so the compounding over a long stream is measured.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch

from memloss.core import validate
from memloss.models import Net

from memloss.models.inference import DETERMINISTIC, MC, OTHER_SCALING, TRAIN_MODE, mode_scaling
from memloss.tasks.evaluation import score_batches

from .base import PROBES, Probe, ProbeResult, checked, default_generator, make_frame
from .data import iter_batches, modes_field, splits_field

__all__ = ["TestTimeScaling", "task_at_length", "task_length", "measured_lengths", "Measured"]

log = logging.getLogger(__name__)


def task_length(task: Any) -> int | None:
    """The task's ``length`` parameter as an integer (a named length such as temporal
    order's ``"short"`` resolves through the task's ``seq_len``), or None without one."""
    if not (dataclasses.is_dataclass(task)
            and "length" in {f.name for f in dataclasses.fields(task)}):
        return None
    length = getattr(task, "length")
    if isinstance(length, int) and not isinstance(length, bool):
        return length
    resolved = getattr(task, "seq_len", None)
    if isinstance(resolved, int):
        return resolved
    raise ValueError(f"task {getattr(task, 'name', type(task).__name__)!r} has a non-integer "
                     f"length {length!r} that it does not resolve (no integer seq_len)")


def task_at_length(task: Any, length: int) -> Any:
    """The same task with sequences of ``length`` steps."""
    if task_length(task) is None:
        raise ValueError(f"task {getattr(task, 'name', type(task).__name__)!r} has no 'length' "
                         "parameter, so it cannot be evaluated at other lengths; leave "
                         "test-time-scaling's lengths and factors at their defaults")
    return dataclasses.replace(task, length=length)


@dataclass(frozen=True)
class Measured:
    """The steps of the sequences a list of batches scores: ``longest``/``shortest``
    sequence, ``segment`` (the widest batch), ``segments`` (batches per sequence, the most)
    and ``carried`` (a stream: the state is carried from batch to batch)."""

    longest: int
    shortest: int
    segment: int
    segments: int
    carried: bool

    def label(self) -> str:
        """``"140 steps per stream column (4 segments of up to 35 steps, state carried)"``."""
        span = (f"{self.longest}" if self.shortest == self.longest
                else f"{self.shortest}-{self.longest}")
        if self.carried:
            return (f"{span} steps per stream column ({self.segments} segment(s) of up to "
                    f"{self.segment} steps, state carried)")
        return f"{span} steps per sequence"


def measured_lengths(batches: Sequence[Any]) -> Measured:
    """What :class:`TestTimeScaling` measured on ``batches``: a batch that carries the state
    (``Batch.carry``) continues the sequences of the batch before it, so a stream column's
    length is the sum of its batches' widths; otherwise each sequence is its batch's width, or
    its real length in a padded batch (``Batch.lengths``)."""
    if not batches:
        raise ValueError("no batch to measure")
    lens: list[int] = []
    segments = run = 0
    for i, b in enumerate(batches):
        width = int(b.inputs.shape[1])
        if b.carry and i > 0 and batches[i - 1].carry:  # the same stream columns, continued
            lens[-1] += width
            run += 1
        elif b.carry:
            lens.append(width)
            run = 1
        else:
            lens += [int(x) for x in b.lengths.tolist()] if b.lengths is not None else [width]
            run = 1
        segments = max(segments, run)
    return Measured(max(lens), min(lens), max(int(b.inputs.shape[1]) for b in batches),
                    segments, any(b.carry for b in batches))


def _lengths(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, tuple):
        raise ValueError(f"{owner}: {name} must be a tuple of integers, got {value!r}")
    for L in value:
        validate.integer(owner, f"every {name[:-1]}", L)


def _factors(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, tuple) or not value or not all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 for f in value):
        raise ValueError(f"{owner}: {name} must be a non-empty tuple of numbers > 0, got "
                         f"{value!r}")


@PROBES.register("test-time-scaling", "task metric under deterministic, other-scaling, MC and "
                 "train-mode inference over sequence lengths longer than trained")
@dataclass(frozen=True)
class TestTimeScaling(Probe):
    """Args: ``lengths`` explicit lengths, else ``factors`` x the task's length; ``samples``
    K for mc; up to ``max_batches`` batches of ``batch_size`` from each of ``splits``."""

    __test__: ClassVar[bool] = False  # not a pytest test class despite its name
    name: ClassVar[str] = "test-time-scaling"
    title: ClassVar[str] = "Accuracy on longer sequences under each inference mode"
    rank: ClassVar[int] = 20
    # its quantities are the task's metrics, described by the metric (reports' wording)
    lengths: tuple[int, ...] = checked((), _lengths)
    factors: tuple[float, ...] = checked((1.0, 2.0, 4.0), _factors)
    samples: int = checked(10, validate.integer)
    batch_size: int = checked(128, validate.integer)
    max_batches: int = checked(4, validate.integer)
    splits: tuple[str, ...] = checked(("test",), splits_field)
    modes: tuple[str, ...] = checked((DETERMINISTIC, OTHER_SCALING, MC, TRAIN_MODE), modes_field,
                                     DETERMINISTIC, OTHER_SCALING, MC, TRAIN_MODE)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        return {"factors": (1.0, 2.0), "samples": 2, "batch_size": 16, "max_batches": 1}

    def sweep(self, task: Any) -> list[int | None]:
        base = task_length(task)
        if self.lengths:
            if base is None:
                task_at_length(task, self.lengths[0])  # raises the clear error
            return list(self.lengths)
        if base is None:
            log.info("%s: task has no length parameter; evaluating it as it is", self.name)
            return [None]
        return sorted({max(1, round(f * base)) for f in self.factors})

    def _steps(self, task: Any) -> int | None:
        """Time steps of the task as given (the trained length)."""
        for batch in task.batches(self.splits[0], 1):
            return int(batch.inputs.shape[1])
        return None

    def __call__(self, net: Net, task: Any, *, generator: torch.Generator | None = None
                 ) -> ProbeResult:
        gen = default_generator(generator)
        rows: list[dict[str, Any]] = []
        table: dict[str, Any] = {}
        measured: dict[str, dict[str, str]] = {}
        for L in self.sweep(task):
            t = task if L is None else task_at_length(task, L)
            for split in self.splits:
                batches = list(iter_batches(net, t, split, self.batch_size, self.max_batches))
                if not batches:
                    raise ValueError(f"{self.name}: task yielded no {split!r} batch at length {L}")
                seen = measured_lengths(batches)
                length = seen.longest
                measured.setdefault(split, {})[str(length)] = seen.label()
                for mode in self.modes:
                    metrics = score_batches(net, t, batches, mode=mode, samples=self.samples,
                                            generator=gen)
                    if task.metric not in metrics:
                        raise ValueError(f"task {t.name!r}: finalize() returned {sorted(metrics)} "
                                         f"without its headline metric {task.metric!r}")
                    sc = mode_scaling(net, mode)
                    for q, v in metrics.items():
                        rows.append(dict(mode=mode, scaling=sc, quantity=q, value=float(v),
                                         split=split, length=length,
                                         samples=self.samples if mode == MC else 1))
                    table.setdefault(split, {}).setdefault(mode, {})[str(length)] = \
                        float(metrics[task.metric])
        frame = make_frame(self.name, net, rows, extra_columns=("split", "length", "samples"))
        frame["length"] = frame["length"].astype("Int64")
        summary = {"metric": task.metric, "lower_is_better": bool(task.lower_is_better),
                   "trained_length": self._steps(task), "table": table, "measured": measured}
        return ProbeResult(frame, summary)
