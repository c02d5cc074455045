"""Zaremba et al. 2014, Recurrent Neural Network Regularization: the PTB models of section 4.1.

The numbers of Zaremba's Table 1 are an image in the provided text; the medium and large
values are those Gal & Ghahramani 2016 Table 1 lists for "Zaremba et al. [4]".
"""
from __future__ import annotations

from typing import Any

from .base import WORD_CPU, ZAREMBA, Preset, add

__all__ = ["ZAREMBA_SETUPS"]

#: section 4.1's three models (their TrainConfig settings besides task, optimizer, lr, batch)
ZAREMBA_SETUPS = {
    "small": dict(config=dict(num_layers=2, hidden_size=200, init_range=0.1, scheme="none",
                              epochs=13, schedule="decay", lr_decay=1 / 2, decay_start=4,
                              clip=None, task_params={"batching": "stream", "bptt": 20}),
                  reported={}, row="non-regularized LSTM, 2 x 200",
                  notes="Section 4.1: 13 epochs, lr 1 for 4 epochs then halved each epoch, "
                        "minibatch 20, unrolled 20 steps, init U[-0.1, 0.1]. No clipping "
                        "threshold is stated for this model (none used). Table 1 is an image "
                        "in the provided text: no reported number."),
    "medium": dict(config=dict(num_layers=2, hidden_size=650, init_range=0.05,
                               scheme="zaremba:p=0.5", epochs=39, schedule="decay",
                               lr_decay=1 / 1.2, decay_start=6, clip=5.0,
                               task_params={"batching": "stream", "bptt": 35}),
                   reported={"valid": 86.2, "test": 82.7}, row="medium regularized LSTM, 2 x 650",
                   notes="Section 4.1: 50% dropout on non-recurrent connections, 39 epochs, lr 1 "
                         "divided by 1.2 each epoch after epoch 6, clip 5, minibatch 20, 35 steps. "
                         "Numbers from Gal & Ghahramani 2016 Table 1, row 'Zaremba et al. [4]'."),
    "large": dict(config=dict(num_layers=2, hidden_size=1500, init_range=0.04,
                              scheme="zaremba:p=0.65", epochs=55, schedule="decay",
                              lr_decay=1 / 1.15, decay_start=14, clip=10.0,
                              task_params={"batching": "stream", "bptt": 35}),
                  reported={"valid": 82.2, "test": 78.4}, row="large regularized LSTM, 2 x 1500",
                  notes="Section 4.1: 65% dropout, 55 epochs, lr 1 divided by 1.15 each epoch "
                        "after epoch 14, clip 10, minibatch 20, 35 steps. Numbers from Gal & "
                        "Ghahramani 2016 Table 1, row 'Zaremba et al. [4]'."),
}

# section 4.1 trains every model for a fixed schedule and reports the final network
for size, z in ZAREMBA_SETUPS.items():
    c = dict(z["config"])
    add(Preset(f"zaremba-{size}", ZAREMBA, "Table 1" if size != "small" else "Section 4.1",
               z["row"], "perplexity", z["reported"],
               dict(task="ptb-word", task_params=c.pop("task_params"), optimizer="sgd",
                    lr=1.0, batch_size=20, restore_best=False, **c),
               notes=z["notes"]),
        WORD_CPU)
