"""Bad input is a ValueError that names the problem."""
from __future__ import annotations

import math

import pytest
import torch

from memloss.models import Net, NetConfig, Recurrent, Stack, make_scheme, parse_scheme


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, math.nan, math.inf])
@pytest.mark.parametrize("name", ["zaremba", "gal", "moon", "semeniuta", "hidden-dropout",
                                  "weight-drop", "output-zoneout"])
def test_rate_outside_unit_interval(name, p):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        make_scheme(name, p=p)


@pytest.mark.parametrize("kw", [{"p_cell": 1.0}, {"p_hidden": -0.5}])
def test_zoneout_rate_outside_unit_interval(kw):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        make_scheme("zoneout", **kw)


def test_unknown_scheme_lists_valid_names():
    with pytest.raises(ValueError, match="unknown scheme 'drop'.*semeniuta"):
        parse_scheme("drop:p=0.1")
    with pytest.raises(ValueError, match="unknown scheme"):
        Recurrent("lstm", 2, 3, scheme="variational")


def test_unknown_cell_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown cell 'lstmm'.*lstm"):
        Recurrent("lstmm", 2, 3)
    with pytest.raises(ValueError, match="hidden_size"):
        Recurrent("lstm", 2, 0)
    with pytest.raises(ValueError, match="nonlinearity"):
        Recurrent("lstm", 2, 3, nonlinearity="relu")
    with pytest.raises(ValueError, match="path"):
        Recurrent("lstm", 2, 3, path="cuda")


def test_a_cell_naming_a_torch_module_the_native_path_does_not_run():
    from dataclasses import replace

    from memloss.models.cells import get_cell

    with pytest.raises(ValueError, match="native='LSTMCell' is not a torch.nn module the "
                                         "native path runs; use one of LSTM, GRU, RNN"):
        replace(get_cell("lstm"), native="LSTMCell")


def test_bad_scheme_parameters():
    with pytest.raises(ValueError, match="no parameter 'rate'.*p"):
        parse_scheme("semeniuta:rate=0.1")
    with pytest.raises(ValueError, match="must be a number"):
        parse_scheme("semeniuta:p=high")
    with pytest.raises(ValueError, match="sampling"):
        make_scheme("moon", sampling="batch")
    with pytest.raises(ValueError, match="scaling"):
        make_scheme("zaremba", scaling="none")
    with pytest.raises(ValueError, match="key=value"):
        parse_scheme("semeniuta:0.1")


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_zoneout_on_a_cell_without_cell_state(cell):
    with pytest.raises(ValueError, match="zoneout_cell.*p_cell=0"):
        Recurrent(cell, 2, 3, scheme="zoneout:p_cell=0.2,p_hidden=0.1")
    with pytest.raises(ValueError, match="hidden-dropout"):
        Recurrent(cell, 2, 3, scheme="moon")
    Recurrent(cell, 2, 3, scheme="zoneout:p_cell=0,p_hidden=0.1")  # valid


def test_incompatible_combination():
    with pytest.raises(ValueError, match="incompatible.*'zaremba'.*'gal'.*input"):
        Recurrent("lstm", 2, 3, scheme="zaremba+gal")
    with pytest.raises(ValueError, match="incompatible.*update"):
        Stack((make_scheme("semeniuta"), make_scheme("output-zoneout"))).sites(
            Recurrent("lstm", 1, 1).cell)


def test_wrong_input_rank_and_size():
    layer = Recurrent("lstm", 4, 3)
    with pytest.raises(ValueError, match="3-D"):
        layer(torch.randn(5, 4))
    with pytest.raises(ValueError, match="5 features, expected input_size=4"):
        layer(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="floating point"):
        layer(torch.zeros(2, 3, 4, dtype=torch.long))


def test_wrong_state_shape():
    layer = Recurrent("lstm", 4, 3, num_layers=2)
    x = torch.randn(5, 2, 4)
    with pytest.raises(ValueError, match="pair"):
        layer(x, torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match=r"h_0 has shape \(1, 2, 3\), expected \(2, 2, 3\)"):
        layer(x, (torch.zeros(1, 2, 3), torch.zeros(2, 2, 3)))
    with pytest.raises(ValueError, match="one tensor"):
        Recurrent("gru", 4, 3)(x, (torch.zeros(1, 2, 3),))


def test_wrong_masks():
    layer = Recurrent("lstm", 4, 3, scheme="semeniuta:p=0.2")
    x = torch.randn(5, 2, 4)
    good = layer.mask_plan().sample(5, 2)
    with pytest.raises(ValueError, match="missing"):
        layer(x, masks={})
    with pytest.raises(ValueError, match="unknown keys"):
        layer(x, masks={**good, "l0.cell": good["l0.update"]})
    with pytest.raises(ValueError, match=r"l0.update.*shape \(2, 3\), expected \(5, 2, 3\)"):
        layer(x, masks={"l0.update": torch.ones(2, 3)})


def test_net_config_errors():
    partial = NetConfig(hidden_size=3)  # data sizes left to a task
    assert not partial.complete
    with pytest.raises(ValueError, match="exactly one of input_size"):
        Net(partial)
    with pytest.raises(ValueError, match="not both"):
        NetConfig(input_size=2, vocab_size=3)
    with pytest.raises(ValueError, match="unknown scheme"):
        NetConfig(input_size=2, scheme="nope")
    with pytest.raises(ValueError, match="vocab_size"):
        NetConfig(input_size=2, scheme="gal:p_embedding=0.2")
    net = Net(NetConfig(vocab_size=10, hidden_size=3))
    with pytest.raises(ValueError, match="token ids"):
        net(torch.randn(2, 3, 4))


@pytest.mark.parametrize("text,spec", [
    ("zaremba:p=0.5", "zaremba:p=0.5,scaling=inverted"),
    ("gal:p=0.25", "gal:p=0.25,p_recurrent=0.25,p_embedding=0.0,tied=True,scaling=inverted"),
    ("zoneout", "zoneout:p_cell=0.5,p_hidden=0.05,sampling=step"),
    ("output-zoneout", "output-zoneout:p=0.25,scaling=inverted"),
])
def test_a_later_option_at_its_default_leaves_the_scheme_text_as_it_was(text, spec):
    assert parse_scheme(text).spec == spec


@pytest.mark.parametrize("text", ["zaremba:p=0.2,p_output=0.5", "gal:p=0,sampling=step",
                                  "zoneout:p_cell=0.15,p_hidden=0.15,shared=true",
                                  "output-zoneout:p=0.25,reading=printed",
                                  "zaremba:p=0.2,p_output=None"])
def test_later_options_round_trip(text):
    s = parse_scheme(text)
    assert parse_scheme(s.spec) == s


def test_gal_per_step_is_labelled_and_per_sequence_is_not():
    assert parse_scheme("gal:sampling=step").short == "gal/step"
    assert parse_scheme("gal").short == "gal"


@pytest.mark.parametrize("text,needle", [("output-zoneout:reading=code", "reading"),
                                         ("zaremba:p_output=1.5", "p_output"),
                                         ("gal:sampling=forward", "sampling"),
                                         ("zoneout:shared=maybe", "shared")])
def test_bad_later_options_are_one_line_errors(text, needle):
    with pytest.raises(ValueError, match=needle):
        parse_scheme(text)
