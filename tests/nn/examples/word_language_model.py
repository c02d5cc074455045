"""A word-level language model written the way PyTorch's examples/word_language_model writes
one (a Corpus of word ids, batchify / get_batch, Embedding -> LSTM -> Linear with
nn.Dropout, truncated BPTT with repackaged hidden states, gradient clipping and a plain SGD
update), as an unchanged user script: the only hook is ``rnn_class`` (``torch.nn.LSTM`` or
``memloss.nn.LSTM``) and ``rnn_kwargs`` (e.g. ``{"scheme": "gal"}``). With ``save=PATH`` it
saves the whole model and loads it back as the example's main.py does (``torch.save(model,
f)``, then ``torch.load(f)`` under its own list of safe globals, all torch.nn's), and
evaluates the reloaded model."""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn


class Corpus:
    def __init__(self, path: Path) -> None:
        self.idx: dict[str, int] = {}
        self.train = self.tokenize(path / "train.txt")
        self.valid = self.tokenize(path / "valid.txt")

    def tokenize(self, path: Path) -> torch.Tensor:
        ids = []
        for line in path.read_text(encoding="utf-8").splitlines():
            for word in line.split() + ["<eos>"]:
                ids.append(self.idx.setdefault(word, len(self.idx)))
        return torch.tensor(ids, dtype=torch.int64)


class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False, *,
                 rnn_class=nn.LSTM, rnn_kwargs=None):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = rnn_class(ninp, nhid, nlayers, dropout=dropout, **(rnn_kwargs or {}))
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.nhid, self.nlayers = nhid, nlayers
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        return self.decoder(output), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid))


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    return data.narrow(0, 0, nbatch * bsz).view(bsz, -1).t().contiguous()


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].view(-1)


def reload(path: Path) -> nn.Module:
    """The example's "Load the best saved model" (torch.load with weights_only=True, the
    default, and the example's safe globals)."""
    with open(path, "rb") as f:
        safe_globals = [
            RNNModel,
            torch.nn.modules.dropout.Dropout,
            torch.nn.modules.linear.Linear,
            torch.nn.modules.rnn.GRU,
            torch.nn.modules.rnn.LSTM,
            torch.nn.modules.rnn.RNN,
            torch.nn.modules.sparse.Embedding,
        ]
        with torch.serialization.safe_globals(safe_globals):
            model = torch.load(f)
        model.rnn.flatten_parameters()
    return model


def evaluate(model, val_data, ntokens, bptt, batch_size) -> float:
    criterion = nn.NLLLoss()
    model.eval()
    total = 0.0
    hidden = model.init_hidden(batch_size)
    with torch.no_grad():
        for i in range(0, val_data.size(0) - 1, bptt):
            data, targets = get_batch(val_data, i, bptt)
            output, hidden = model(data, hidden)
            output = nn.functional.log_softmax(output.view(-1, ntokens), dim=1)
            total += len(data) * criterion(output, targets).item()
            hidden = repackage_hidden(hidden)
    return total / (len(val_data) - 1)


def run(corpus_dir: Path, *, rnn_class=nn.LSTM, rnn_kwargs=None, seed=1111, steps=4,
        emsize=16, nhid=16, nlayers=2, dropout=0.2, lr=20.0, clip=0.25, bptt=8,
        batch_size=4, save: Path | None = None) -> dict:
    """Train ``steps`` batches and evaluate once; returns the training losses and the
    validation loss (and, with ``save``, the reloaded model and its validation loss)."""
    torch.manual_seed(seed)
    corpus = Corpus(corpus_dir)
    train_data = batchify(corpus.train, batch_size)
    val_data = batchify(corpus.valid, batch_size)
    ntokens = len(corpus.idx)
    model = RNNModel(ntokens, emsize, nhid, nlayers, dropout, rnn_class=rnn_class,
                     rnn_kwargs=rnn_kwargs)
    criterion = nn.NLLLoss()
    model.train()
    hidden = model.init_hidden(batch_size)
    losses = []
    for i in range(0, steps * bptt, bptt):
        data, targets = get_batch(train_data, i, bptt)
        hidden = repackage_hidden(hidden)
        model.zero_grad()
        output, hidden = model(data, hidden)
        output = nn.functional.log_softmax(output.view(-1, ntokens), dim=1)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        losses.append(loss.item())
    val_loss = evaluate(model, val_data, ntokens, bptt, batch_size)
    out = {"train_losses": losses, "val_loss": val_loss, "val_ppl": math.exp(val_loss),
           "model": model}
    if save is not None:
        with open(save, "wb") as f:
            torch.save(model, f)
        out["reloaded"] = reload(save)
        out["reloaded_val_loss"] = evaluate(out["reloaded"], val_data, ntokens, bptt, batch_size)
    return out
