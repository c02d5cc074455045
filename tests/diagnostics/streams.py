"""A small streamed language-model task (Zaremba's batching, carried state) for the tests."""
from __future__ import annotations

from pathlib import Path

import torch

from memloss.models import Net, NetConfig
from memloss.tasks import make_task

WORDS = ("the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log", "and", "then", "slept")


def write_corpus(root: Path, tokens: int = 600, seed: int = 0) -> Path:
    """``train.txt``, ``valid.txt``, ``test.txt`` of random lines over :data:`WORDS`."""
    g = torch.Generator().manual_seed(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i, split in enumerate(("train", "valid", "test")):
        ids = torch.randint(0, len(WORDS), (tokens,), generator=g).tolist()
        lines = [" ".join(WORDS[j] for j in ids[s:s + 9]) for s in range(0, tokens, 9)]
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def stream_task(root: Path, bptt: int = 5):
    """A ``text-word`` task on :func:`write_corpus`'s files, stream batching."""
    return make_task("text-word", root=str(root), bptt=bptt, batching="stream")


def stream_net(task, scheme: str = "none", cell: str = "lstm", hidden: int = 8,
               dtype: torch.dtype = torch.float32) -> Net:
    torch.manual_seed(3)
    return Net(NetConfig(cell=cell, hidden_size=hidden, scheme=scheme, path="reference",
                         **task.net_kwargs())).to(dtype)
