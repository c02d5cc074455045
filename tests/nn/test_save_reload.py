"""Whole models holding memloss layers save with ``torch.save(model)`` and load with
``torch.load``'s default ``weights_only=True``: the official word-language-model example's
save-and-reload runs unchanged with ``memloss.nn.LSTM(scheme=...)``, and a saved layer of
every scheme names no global that torch would refuse."""
from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
import torch
from torch.serialization import get_unsafe_globals_in_checkpoint

import memloss.nn as mnn
from memloss.models import Recurrent
from memloss.models.schemes import Gal, list_schemes
from tests.nn.examples import word_language_model
from tests.tasks.data.helpers import FIXTURES


@dataclasses.dataclass(frozen=True)
class MyGal(Gal):
    """A scheme its text form does not rebuild (not registered): pickled as the object."""


# the masked schemes train on the fused path, whose first use compiles its kernels (slow)
@pytest.mark.parametrize("scheme", ["none", *(pytest.param(s, marks=pytest.mark.slow) for s in (
    "gal:p=0.3", "zoneout", "semeniuta:p=0.25,sampling=step+zaremba:p=0.5"))])
def test_the_examples_reload_gives_the_same_model(scheme, tmp_path):
    out = word_language_model.run(FIXTURES / "text", rnn_class=mnn.LSTM,
                                  rnn_kwargs={"scheme": scheme}, steps=2,
                                  save=tmp_path / "model.pt")
    model, back = out["model"], out["reloaded"]
    assert type(back.rnn) is mnn.LSTM and back.rnn.scheme == model.rnn.scheme
    assert repr(back) == repr(model)
    assert back.rnn.mask_plan() == model.rnn.mask_plan()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 back.state_dict().values()))
    assert out["reloaded_val_loss"] == out["val_loss"]


def _saved_globals(module: torch.nn.Module, path) -> list[str]:
    torch.save(module, path)
    return get_unsafe_globals_in_checkpoint(path)


@pytest.mark.parametrize("scheme", list_schemes())
def test_every_scheme_saves_as_plain_data(scheme, tmp_path):
    layer = mnn.LSTM(3, 4, 2, scheme=scheme)
    assert _saved_globals(layer, tmp_path / "l.pt") == []
    back = torch.load(tmp_path / "l.pt")
    assert back.scheme == layer.scheme and back.state_names == layer.state_names
    x = torch.randn(5, 2, 3)
    layer.eval(), back.eval()
    assert torch.equal(layer(x)[0], back(x)[0])


@pytest.mark.parametrize("make", [
    lambda: mnn.GRU(3, 4, 2, dropout=0.3, bidirectional=True, scheme="gal"),
    lambda: mnn.RNN(3, 4, nonlinearity="relu", batch_first=True, scheme="zaremba"),
    lambda: mnn.LSTM(3, 4, proj_size=2, scheme="zaremba"),
    lambda: Recurrent("layernorm-lstm", 3, 4, scheme="semeniuta"),
])
def test_other_layers_and_options_reload(make, tmp_path):
    layer = make()
    assert _saved_globals(layer, tmp_path / "l.pt") == []
    back = torch.load(tmp_path / "l.pt")
    assert repr(back) == repr(layer)
    masks = layer.mask_plan().sample(5, 2, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, 5, 3) if layer.batch_first else torch.randn(5, 2, 3)
    assert torch.equal(layer(x, masks=masks)[0], back(x, masks=masks)[0])


def test_deepcopy_and_an_unregistered_scheme_keep_working():
    layer = mnn.LSTM(3, 4, scheme="gal")
    twin = copy.deepcopy(layer)
    assert twin.scheme == layer.scheme and twin.weight_ih_l0 is not layer.weight_ih_l0
    mine = mnn.LSTM(3, 4, scheme=MyGal())
    assert mine.__getstate__()["scheme"] is mine.scheme
    assert type(pickle.loads(pickle.dumps(mine)).scheme).__name__ == "MyGal"
