"""A word-level LM written the way PyTorch's word_language_model example writes its model:
an ``encoder`` embedding, an ``rnn`` (``nn.LSTM``/``GRU``/``RNN``, sequence first) with dropout
between layers, dropout on its input and output, and a ``decoder`` linear layer; its own
vocabulary (tokens in order of first appearance, ``<eos>`` after each line) and its own
training loop (columns of one stream, truncated BPTT with the state carried over)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class RNNModel(nn.Module):
    def __init__(self, rnn_type: str, ntoken: int, ninp: int, nhid: int, nlayers: int,
                 dropout: float = 0.2, tie_weights: bool = False) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ("LSTM", "GRU"):
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            act = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type]
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=act, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, x, hidden=None):  # x: [T, B]
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(out)), hidden


def vocabulary(root: Path) -> list[str]:
    """The example's Dictionary: every token of train, valid, test in order of first sight."""
    seen: dict[str, int] = {}
    for split in ("train", "valid", "test"):
        for line in (root / f"{split}.txt").read_text(encoding="utf-8").splitlines():
            for w in line.split() + ["<eos>"]:
                seen.setdefault(w, len(seen))
    return list(seen)


def encode(root: Path, split: str, vocab: list[str]) -> torch.Tensor:
    ids = {w: i for i, w in enumerate(vocab)}
    lines = (root / f"{split}.txt").read_text(encoding="utf-8").splitlines()
    return torch.tensor([ids[w] for line in lines for w in line.split() + ["<eos>"]])


def train_lm(root: Path, rnn_type: str = "LSTM", steps: int = 20, seed: int = 0,
             layers: int = 2, hidden: int = 10) -> tuple[RNNModel, list[str]]:
    """A few steps of SGD (lr 1, clip 0.25) on the train split, bptt 5, batch 4."""
    torch.manual_seed(seed)
    vocab = vocabulary(root)
    data = encode(root, "train", vocab)
    cols = len(data) // 4
    data = data[:cols * 4].view(4, cols).t().contiguous()  # [T, B]
    model = RNNModel(rnn_type, len(vocab), 6, hidden, layers)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    model.train()
    hidden_state = None
    for step in range(steps):
        i = (step * 5) % (cols - 6)
        if i == 0:
            hidden_state = None
        x, y = data[i:i + 5], data[i + 1:i + 6]
        out, hidden_state = model(x, hidden_state)
        hidden_state = tuple(h.detach() for h in hidden_state) if isinstance(hidden_state, tuple) \
            else hidden_state.detach()
        loss = F.cross_entropy(out.reshape(-1, len(vocab)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
    return model.eval(), vocab
