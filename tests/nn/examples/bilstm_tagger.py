"""A BiLSTM sequence tagger as users write one with torch.nn: word embeddings, a
bidirectional LSTM over ``pack_padded_sequence`` batches, a linear tag classifier on
``pad_packed_sequence``'s output, cross-entropy that ignores the padding. An unchanged user
script but for the hook ``rnn_class`` / ``rnn_kwargs``."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

PAD_TAG = -100


def read_conll(path: Path) -> list[tuple[list[str], list[str]]]:
    sents, words, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if words:
                sents.append((words, tags))
            words, tags = [], []
        else:
            words.append(parts[0].lower())
            tags.append(parts[-1])
    return sents


class Tagger(nn.Module):
    def __init__(self, vocab, ntags, emb=12, hidden=10, layers=2, dropout=0.0, *,
                 rnn_class=nn.LSTM, rnn_kwargs=None):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb, padding_idx=0)
        self.lstm = rnn_class(emb, hidden, layers, batch_first=True, bidirectional=True,
                              dropout=dropout, **(rnn_kwargs or {}))
        self.out = nn.Linear(2 * hidden, ntags)

    def forward(self, words, lengths):
        packed = pack_padded_sequence(self.embed(words), lengths, batch_first=True,
                                      enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=words.shape[1])
        return self.out(out)


def run(conll_file: Path, *, rnn_class=nn.LSTM, rnn_kwargs=None, seed=0, steps=3,
        batch_size=4, dropout=0.0) -> dict:
    """Train ``steps`` batches with Adam; returns the losses and the tag predictions of the
    first batch afterwards (eval mode)."""
    torch.manual_seed(seed)
    sents = read_conll(conll_file)
    vocab = {"<pad>": 0}
    tagset: dict[str, int] = {}
    data = []
    for words, tags in sents:
        data.append((torch.tensor([vocab.setdefault(w, len(vocab)) for w in words]),
                     torch.tensor([tagset.setdefault(t, len(tagset)) for t in tags])))
    model = Tagger(len(vocab), len(tagset), dropout=dropout, rnn_class=rnn_class,
                   rnn_kwargs=rnn_kwargs)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    batches = [data[i:i + batch_size] for i in range(0, len(data), batch_size)]
    losses = []
    for step in range(steps):
        batch = batches[step % len(batches)]
        words = pad_sequence([w for w, _ in batch], batch_first=True)
        tags = pad_sequence([t for _, t in batch], batch_first=True, padding_value=PAD_TAG)
        lengths = torch.tensor([len(w) for w, _ in batch])
        opt.zero_grad()
        logits = model(words, lengths)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), tags.flatten(),
                                           ignore_index=PAD_TAG)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    words = pad_sequence([w for w, _ in batches[0]], batch_first=True)
    with torch.no_grad():
        pred = model(words, torch.tensor([len(w) for w, _ in batches[0]])).argmax(-1)
    return {"losses": losses, "pred": pred}
