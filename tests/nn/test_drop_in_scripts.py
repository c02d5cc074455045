"""The issue's "done when": two unchanged user scripts (a word language model written the way
PyTorch's examples/word_language_model writes one, and a packed BiLSTM tagger) give the same
losses with ``memloss.nn.LSTM(scheme="none")`` as with ``torch.nn.LSTM`` under the same seed,
and run every registered scheme with one argument added."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import memloss.nn as mnn
from memloss.models.schemes import list_schemes
from tests.nn.examples import bilstm_tagger, word_language_model
from tests.tasks.data.helpers import FIXTURES

TEXT, CONLL = FIXTURES / "text", FIXTURES / "conll" / "eng.train"


def test_word_language_model_is_unchanged_by_the_swap():
    ref = word_language_model.run(TEXT, rnn_class=nn.LSTM, dropout=0.0)
    ours = word_language_model.run(TEXT, rnn_class=mnn.LSTM, rnn_kwargs={"scheme": "none"},
                                   dropout=0.0)
    assert ours["train_losses"] == pytest.approx(ref["train_losses"], rel=1e-5)
    assert ours["val_loss"] == pytest.approx(ref["val_loss"], rel=1e-5)
    assert ref["train_losses"][-1] != ref["train_losses"][0]


def test_bilstm_tagger_is_unchanged_by_the_swap():
    ref = bilstm_tagger.run(CONLL, rnn_class=nn.LSTM)
    ours = bilstm_tagger.run(CONLL, rnn_class=mnn.LSTM, rnn_kwargs={"scheme": "none"})
    assert ours["losses"] == pytest.approx(ref["losses"], rel=1e-5)
    assert torch.equal(ours["pred"], ref["pred"])


@pytest.mark.parametrize("scheme", list_schemes())
def test_every_scheme_runs_with_one_argument(scheme):
    """The word LM keeps its torch dropout=0.2 (stacked as torch-dropout); the packed
    bidirectional tagger runs each scheme with its default rates. ``torch-dropout`` is what
    dropout= already is: asking for both is refused, and the scheme replaces the argument."""
    drop = 0.2
    if scheme == "torch-dropout":
        with pytest.raises(ValueError, match="both place a mask at the 'between' site"):
            mnn.LSTM(4, 4, 2, dropout=0.2, scheme=scheme)
        drop = 0.0
    lm = word_language_model.run(TEXT, rnn_class=mnn.LSTM, rnn_kwargs={"scheme": scheme},
                                 steps=2, dropout=drop)
    assert all(math.isfinite(v) for v in lm["train_losses"]) and math.isfinite(lm["val_loss"])
    tag = bilstm_tagger.run(CONLL, rnn_class=mnn.LSTM, rnn_kwargs={"scheme": scheme}, steps=2,
                            dropout=drop / 2)
    assert all(math.isfinite(v) for v in tag["losses"])
