"""net_from_torch recognises torch.nn's dropout=p: the torch-dropout scheme is that dropout
(no warning, the mask between the layers), any scheme without it is warned about, naming
torch-dropout:p."""
from __future__ import annotations

import logging

from torch import nn

from memloss.diagnostics.external import net_from_torch


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_torch_dropout_is_recognised_and_advised(caplog):
    rnn = nn.LSTM(4, 5, num_layers=2, dropout=0.3, batch_first=True)
    emb = nn.Embedding(9, 4)
    with caplog.at_level(logging.WARNING, logger="memloss.diagnostics.external"):
        for scheme in ("none", "zaremba:p=0.3"):
            caplog.clear()
            net_from_torch(rnn, embedding=emb, scheme=scheme)
            (said,) = _warnings(caplog)
            assert "trained with dropout=0.3 between its layers" in said
            assert "add torch-dropout:p=0.3 to the scheme" in said and "e.g. zaremba" not in said
        caplog.clear()
        net = net_from_torch(rnn, embedding=emb, scheme="torch-dropout:p=0.3")
        assert _warnings(caplog) == []
        net_from_torch(rnn, embedding=emb, scheme="gal+torch-dropout:p=0.3")
        assert _warnings(caplog) == []
    entry = net.rnn.mask_plan().get("l1.between")
    assert entry is not None and entry.spec.p == 0.3 and entry.spec.sampling == "step"
