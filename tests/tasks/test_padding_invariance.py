"""The variable-length tasks pass each sequence's length to the net: the same examples padded
to two different lengths give identical losses, predictions and metrics (``Batch.lengths``)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from memloss.models import Net, NetConfig
from memloss.tasks import Batch, Task, make_task
from memloss.tasks.evaluation import score_batches
from tests.tasks.data.helpers import FIXTURES

TASKS = {
    "semeval": lambda: make_task("sentiment", root=str(FIXTURES / "semeval")),
    "pang-lee": lambda: make_task("sentiment", source="pang-lee", root=str(FIXTURES / "pang-lee"),
                                  segment_length=7, valid_fraction=0.2, test_fraction=0.2),
    "conll-ner": lambda: make_task("conll-ner", root=str(FIXTURES / "conll"), embedding_dim=8,
                                   train_length=None),
}


def padded(batch: Batch, extra: int) -> Batch:
    """``batch`` with ``extra`` more pad steps at the end (inputs 0, per-step targets 0 with
    weight 0)."""
    def grow(t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None or t.dim() < 2:
            return t
        return torch.cat([t, t.new_zeros((t.shape[0], extra) + tuple(t.shape[2:]))], 1)
    return replace(batch, inputs=grow(batch.inputs), targets=grow(batch.targets),
                   weights=grow(batch.weights))


def net_for(task: Task, bidirectional: bool, scheme: str) -> Net:
    torch.manual_seed(0)
    return Net(NetConfig(hidden_size=6, scheme=scheme, bidirectional=bidirectional,
                         **task.net_kwargs()))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("name", sorted(TASKS))
def test_padding_changes_no_result(name, bidirectional):
    task = TASKS[name]()
    batch = next(iter(task.batches("train", 8)))
    assert batch.lengths is not None and int(batch.lengths.min()) < batch.inputs.shape[1]
    longer = padded(batch, 3)
    # per-sequence masks do not depend on T: training losses agree under sampled masks too
    net = net_for(task, bidirectional, "gal:p=0.3")
    losses = [task.loss(net(b.inputs, generator=torch.Generator().manual_seed(1),
                            lengths=b.lengths)[0], b) for b in (batch, longer)]
    assert losses[0].item() == pytest.approx(losses[1].item(), rel=1e-6, abs=1e-7)
    net.eval()
    preds = [net.predict_proba(b.inputs, lengths=b.lengths) for b in (batch, longer)]
    T = batch.inputs.shape[1]
    for row, n in enumerate(batch.lengths.tolist()):
        torch.testing.assert_close(preds[1][row, :n], preds[0][row, :n], rtol=1e-6, atol=1e-7)
    if task.target == "last":
        torch.testing.assert_close(batch.last(preds[0]), longer.last(preds[1]))
    else:
        assert torch.equal(preds[0].argmax(-1)[:, :T] * batch.weights.long(),
                           preds[1].argmax(-1)[:, :T] * batch.weights.long())
    for mode in ("deterministic", "mc"):
        scores = [score_batches(net, task, [b], mode=mode, samples=3,
                                generator=torch.Generator().manual_seed(2)) for b in (batch, longer)]
        assert scores[0] == pytest.approx(scores[1], rel=1e-6, abs=1e-7)


def test_the_last_real_step_is_read():
    out = torch.arange(12.0).view(2, 3, 2)
    b = Batch(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long),
              lengths=torch.tensor([2, 3]))
    assert b.last(out).tolist() == [[2.0, 3.0], [10.0, 11.0]]
    assert replace(b, lengths=None).last(out).tolist() == [[4.0, 5.0], [10.0, 11.0]]
