"""test-time-scaling: modes x lengths, the metric equals a direct evaluation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from memloss.diagnostics.test_time_scaling import TestTimeScaling, task_at_length, task_length
from memloss.tasks import make_task

from .toys import FloatTask, LinearTask, net


def _direct_accuracy(n, task, mode_factor_masks):
    ok = count = 0
    for batch in task.batches("test", 16):
        p = torch.softmax(n(batch.inputs, masks=mode_factor_masks)[0], -1)
        ok += int((p[:, -1].argmax(-1) == batch.targets).sum())
        count += len(batch.targets)
    return ok / count


def test_sweep_modes_and_direct_values():
    from memloss.models.inference import expected_masks

    n = net("lstm", "moon:p=0.5")
    task = FloatTask(length=5, size=32)
    r = TestTimeScaling(factors=(1.0, 2.0), samples=3, batch_size=16)(n, task)
    f = r.frame
    assert sorted(set(f.length)) == [5, 10]
    assert set(f["mode"]) == {"deterministic", "other-scaling", "mc", "train-mode"}
    assert set(f.quantity) == {"accuracy"}
    assert f[f["mode"] == "mc"]["samples"].eq(3).all()
    for L in (5, 10):
        t = task_at_length(task, L)
        for mode, other in (("deterministic", False), ("other-scaling", True)):
            got = f[(f["mode"] == mode) & (f.length == L)]["value"].item()
            assert got == pytest.approx(_direct_accuracy(n, t, expected_masks(n, other=other)))
    assert r.summary["trained_length"] == 5
    assert set(r.summary["table"]["test"]["deterministic"]) == {"5", "10"}
    assert r.summary["measured"]["test"] == {"5": "5 steps per sequence",
                                             "10": "10 steps per sequence"}


def test_no_dropout_means_every_mode_agrees():
    r = TestTimeScaling(factors=(1.0,), samples=2, batch_size=32)(net("gru", "none"),
                                                                FloatTask(length=4))
    assert r.frame["value"].nunique() == 1


def test_explicit_lengths_and_named_lengths():
    task = make_task("temporal-order", length="short", train_size=8, valid_size=8, test_size=16)
    assert task_length(task) == 15
    n = net("lstm", "semeniuta", task=task)
    r = TestTimeScaling(lengths=(15, 20), samples=2, batch_size=16, max_batches=1,
                        modes=("deterministic", "mc"))(n, task)
    assert sorted(set(r.frame.length)) == [15, 20]
    assert {"accuracy", "error", "loss"} <= set(r.frame.quantity)
    assert r.summary["trained_length"] == 15


def test_regression_tasks_get_raw_outputs():
    r = TestTimeScaling(factors=(1.0,), samples=2)(net("rnn", "gal"), _Mse(length=4))
    assert r.frame[r.frame["mode"] == "deterministic"]["value"].item() > 0
    assert r.summary["metric"] == "mse"


@dataclass(frozen=True)
class _Mse(LinearTask):
    metric: ClassVar[str] = "mse"
    lower_is_better: ClassVar[bool] = True

    def score(self, probs, batch):
        # raw outputs: a softmax would make every row sum to 1; outputs do not
        return {"se": float(((probs[:, -1].sum(-1) - 1) ** 2).sum()), "n": float(len(batch.targets))}

    def finalize(self, sums):
        return {"mse": sums["se"] / sums["n"]}


def test_tasks_without_length_are_evaluated_as_they_are_or_rejected():
    class Fixed:
        name = "fixed"
        metric = "accuracy"
        lower_is_better = False

        def __init__(self):
            self.inner = FloatTask(length=4)

        def batches(self, split, batch_size, *, generator=None):
            return self.inner.batches(split, batch_size)

        def score(self, p, b):
            return self.inner.score(p, b)

        def finalize(self, s):
            return self.inner.finalize(s)

    r = TestTimeScaling(samples=2)(net(), Fixed())
    assert set(r.frame.length) == {4}
    with pytest.raises(ValueError, match="no 'length' parameter"):
        TestTimeScaling(lengths=(8,))(net(), Fixed())


@pytest.mark.parametrize("kw", [{"factors": ()}, {"factors": (0.0,)}, {"lengths": (0,)},
                                {"lengths": [5]}, {"splits": ("holdout",)}, {"samples": 0}])
def test_bad_parameters_raise(kw):
    with pytest.raises(ValueError):
        TestTimeScaling(**kw)


def test_a_stream_is_measured_through_every_batch_not_by_its_first_width(tmp_path):
    """A streamed LM (state carried from batch to batch): the length is a stream column's
    steps over every batch scored, labelled as such; bptt 7 over 20-step columns is 3
    segments (7, 7, 6), and a column shorter than bptt is its own length, not bptt."""
    from memloss.diagnostics.test_time_scaling import measured_lengths
    from memloss.tasks.data.batching import stream_batches

    from .streams import stream_net, stream_task, write_corpus

    seen = measured_lengths(list(stream_batches(torch.arange(81), 4, 7)))
    assert (seen.longest, seen.shortest, seen.segment, seen.segments, seen.carried) == \
        (20, 20, 7, 3, True)
    assert seen.label() == "20 steps per stream column (3 segment(s) of up to 7 steps, " \
        "state carried)"
    short = measured_lengths(list(stream_batches(torch.arange(81), 4, 35)))
    assert (short.longest, short.segment, short.segments) == (20, 20, 1)
    task = stream_task(write_corpus(tmp_path, tokens=300), bptt=5)
    n = stream_net(task)
    r = TestTimeScaling(samples=2, batch_size=4, max_batches=3,
                        modes=("deterministic",))(n, task)
    assert set(r.frame.length) == {15}  # 3 batches of 5 steps, state carried
    assert r.summary["measured"]["test"] == {
        "15": "15 steps per stream column (3 segment(s) of up to 5 steps, state carried)"}
    assert set(r.summary["table"]["test"]["deterministic"]) == {"15"}


def test_padded_sequences_are_measured_by_their_real_lengths():
    from memloss.diagnostics.test_time_scaling import measured_lengths
    from memloss.tasks.base import Batch

    padded = Batch(torch.zeros(3, 9, 2), torch.zeros(3, dtype=torch.long),
                   lengths=torch.tensor([4, 9, 6]))
    full = Batch(torch.zeros(2, 5, 2), torch.zeros(2, dtype=torch.long))
    seen = measured_lengths([padded, full])
    assert (seen.longest, seen.shortest, seen.carried, seen.segments) == (9, 4, False, 1)
    assert seen.label() == "4-9 steps per sequence"
