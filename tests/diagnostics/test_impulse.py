"""impulse: a perturbation of the state fades as (1-p)^k under cell dropout (open gates)."""
from __future__ import annotations

import math

import pytest

from memloss.diagnostics.impulse import Impulse

from .toys import FloatTask, TokenTask, net, open_gate_lstm


def _delta(frame, q, mode="deterministic"):
    sel = frame[(frame.quantity == q) & (frame["mode"] == mode)]
    return sel.sort_values("t")["value"].to_numpy()


def test_state_impulse_half_life_matches_cell_dropout_rate():
    q = 0.5
    r = Impulse(perturb="state", t0=2, eps=0.5, samples=2)(
        open_gate_lstm(f"moon:p={1 - q},scaling=expectation"), FloatTask(length=9))
    dc = _delta(r.frame, "delta_c")
    assert dc[0] == pytest.approx(0.5, rel=1e-5)  # the perturbation itself, at t0
    assert dc[1:] / dc[:-1] == pytest.approx([q] * (len(dc) - 1), rel=1e-4)
    assert r.summary["half_life"]["deterministic"]["delta_c"] == pytest.approx(1.0, rel=1e-3)
    hl = r.frame[(r.frame.quantity == "delta_c_half_life") & (r.frame["mode"] == "deterministic")]
    assert hl["value"].iloc[0] == pytest.approx(1.0, rel=1e-3)


def test_no_dropout_remembers_the_impulse_forever():
    r = Impulse(perturb="state", t0=1, samples=1)(open_gate_lstm("none"), FloatTask(length=6))
    dc = _delta(r.frame, "delta_c")
    assert dc == pytest.approx([1.0] * 5, rel=1e-5)
    assert math.isinf(r.summary["half_life"]["deterministic"]["delta_c"])


def test_input_impulse_starts_at_t0_and_nothing_changes_before():
    n = net("gru", "semeniuta:p=0.3")
    r = Impulse(t0=3, samples=2)(n, FloatTask(length=8))
    f = r.frame
    rows = f[f.quantity == "delta_h"]
    assert rows.t.min() == 3 and rows.t.max() == 7
    assert (rows["value"] > 0).all()
    assert set(f["mode"]) == {"deterministic", "other-scaling", "train-mode"}


def test_token_input_is_swapped_for_a_different_token():
    n = net("lstm", "gal:p_embedding=0.2", task=TokenTask())
    r = Impulse(t0=0, samples=2, modes=("deterministic",))(n, TokenTask(length=6))
    d = _delta(r.frame[r.frame.layer == 0], "delta_h")
    assert d[0] > 0


def test_t0_outside_the_sequence_is_a_clear_error():
    with pytest.raises(ValueError, match="t0=10 is not inside"):
        Impulse(t0=10)(net(), FloatTask(length=5))
    with pytest.raises(ValueError, match="perturb"):
        Impulse(perturb="weights")
    with pytest.raises(ValueError, match="eps"):
        Impulse(eps=0)
