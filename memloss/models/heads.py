"""FoldedHead: a linear read-out over a model's own words, folded onto a task's tokens.

A model trained with a larger vocabulary than a task's (PyTorch's word_language_model
builds its dictionary over train, valid and test) is scored on the task exactly by
summing the probability of every model word the task lacks into the task's ``<unk>``:

    log p(t)     = log p_model(w(t)) + offset(t)          (gather; offset 0 or -log k)
    log p(<unk>) = logsumexp(log p(<unk>) as gathered, log p_model(w) for every folded w)

The output is a normalised log-distribution over the task's tokens, so any consumer that
applies a softmax (a cross-entropy, a probe) sees ordinary logits and gets the model's own
probabilities. The mapping is held in buffers (saved with the weights); :meth:`set_mapping`
fills them.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FoldedHead"]


class FoldedHead(nn.Module):
    """``linear`` over ``words`` model words, folded onto ``tokens`` task tokens.

    Buffers: ``source`` [tokens] (the model word each task token reads; ``words``: none),
    ``offset`` [tokens] (added to that log-probability: ``-log k`` when one model word is
    shared by ``k`` task tokens, else 0), ``fold`` [words] (the words summed into the token
    ``into``) and ``into`` [1]. Until :meth:`set_mapping`, token t reads word t and the words
    past the last token fold into token 0.

    Shape:
        - input: ``[..., in_features]``
        - output: ``[..., tokens]`` log-probabilities (they sum to 1 over the tokens)
    """

    def __init__(self, in_features: int, words: int, tokens: int) -> None:
        super().__init__()
        if words < 1 or tokens < 1:
            raise ValueError(f"FoldedHead needs at least one word and one token, got words="
                             f"{words}, tokens={tokens}")
        self.linear = nn.Linear(in_features, words)
        self.words, self.tokens = words, tokens
        source = torch.arange(tokens)
        self.register_buffer("source", torch.where(source < words, source, words))
        self.register_buffer("offset", torch.zeros(tokens))
        self.register_buffer("fold", torch.arange(words) >= tokens)
        self.register_buffer("into", torch.zeros(1, dtype=torch.long))

    def set_mapping(self, source: Sequence[int | None], offset: Sequence[float],
                    fold: Sequence[int], into: int) -> None:
        """``source[t]``: the model word task token t reads (None: none); ``offset[t]``: added
        to its log-probability; ``fold``: the model words summed into task token ``into``."""
        if len(source) != self.tokens or len(offset) != self.tokens:
            raise ValueError(f"a mapping of {len(source)} tokens for a head of {self.tokens}")
        if not 0 <= into < self.tokens:
            raise ValueError(f"into={into} is not a token of a head of {self.tokens}")
        if any(s is not None and not 0 <= s < self.words for s in source) or \
                any(not 0 <= w < self.words for w in fold):
            raise ValueError(f"a word index outside the head's {self.words} words")
        with torch.no_grad():
            self.source.copy_(torch.tensor([self.words if s is None else s for s in source]))
            self.offset.copy_(torch.tensor(list(offset), dtype=self.offset.dtype))
            self.fold.zero_()
            self.fold[list(fold)] = True
            self.into.fill_(into)

    def forward(self, input: Tensor) -> Tensor:
        logp = F.log_softmax(self.linear(input), dim=-1)
        none = logp.new_full(logp.shape[:-1] + (1,), float("-inf"))
        out = torch.cat([logp, none], dim=-1).index_select(-1, self.source) + self.offset
        folded = logp.masked_fill(~self.fold, float("-inf")).logsumexp(-1, keepdim=True)
        at = self.into.expand(out.shape[:-1] + (1,))
        return out.scatter(-1, at, torch.logaddexp(out.gather(-1, at), folded))

    def extra_repr(self) -> str:
        return f"words={self.words}, tokens={self.tokens}, folded={int(self.fold.sum())}"
