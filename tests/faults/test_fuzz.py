"""Fuzzing scheme strings and ``--set`` values (hypothesis): every input is either refused
with one short ValueError line, or accepted with exactly the values it spells, never a
traceback or a silently changed value.

``HYPOTHESIS_PROFILE=campaign`` (``tools/fault_campaign.py``) runs many more examples."""
from __future__ import annotations

import os
import re
from dataclasses import fields

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memloss.config import _FIELD_TYPES, TrainConfig, apply_overrides
from memloss.models.schemes import SCHEMES, Scheme, Stack, parse_scheme

settings.register_profile("ci", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("campaign", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: how many examples each property saw (the campaign reports them)
SEEN = {"scheme": 0, "set": 0}

_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TOKENS = [*SCHEMES.list(), ":", ",", "+", "=", " ", "p", "p_recurrent", "p_embedding", "p_cell",
           "p_hidden", "sampling", "scaling", "tied", "0.25", "0.2_5", "1e-1", ".5", "-0.1",
           "1.0", "nan", "inf", "true", "false", "False", "yes", "step", "sequence",
           "expectation", "inverted", "x", "é", "\x00", "9" * 30]


def _one_line(e: ValueError) -> None:
    text = str(e)
    assert "\n" not in text and len(text) <= 400, text[:200]


def _given_params(text: str) -> list[tuple[str, dict[str, str]]]:
    """What an accepted scheme string spells: per part, its name and its key=value texts."""
    out = []
    for part in text.split("+"):
        name, _, args = part.strip().partition(":")
        pairs = [a.strip().partition("=") for a in args.split(",")] if args.strip() else []
        out.append((name.strip(), {k.strip(): v.strip() for k, _, v in pairs}))
    return out


def _spelled(field_type: str, raw: str) -> object:
    if field_type == "bool":
        return raw.lower() in ("1", "true", "yes")
    if field_type == "float":
        assert _NUMBER.fullmatch(raw), f"accepted the number {raw!r}"
        return float(raw)
    return raw


_KEYS = ["p", "p_recurrent", "p_embedding", "p_cell", "p_hidden", "sampling", "scaling", "tied"]
_RAW = ["0", "0.25", "0.5", ".1", "1e-1", "0.2_5", "1", "nan", "-0.1", "true", "false", "no",
        "step", "sequence", "forward", "expectation", "inverted", "", " 0.3 "]
_OWN_KEYS = {n: [f.name for f in fields(SCHEMES.get(n))] or ["p"]  # type: ignore[arg-type]
             for n in SCHEMES.list()}
_part = st.sampled_from(SCHEMES.list()).flatmap(lambda n: st.lists(st.tuples(
    st.sampled_from(_OWN_KEYS[n] + _KEYS[:2]), st.sampled_from(_RAW)), max_size=3).map(
        lambda kv: (n, kv)))
_structured = st.lists(_part, min_size=1, max_size=3).map(lambda parts: "+".join(
        name + (":" + ",".join(f"{k}={v}" for k, v in kv) if kv else "") for name, kv in parts))


@given(st.one_of(_structured, st.lists(st.sampled_from(_TOKENS), max_size=14).map("".join),
                 st.text(max_size=40)))
def test_scheme_strings(text):
    SEEN["scheme"] += 1
    try:
        scheme = parse_scheme(text)
    except ValueError as e:
        _one_line(e)
        return
    assert isinstance(scheme, Scheme)
    assert parse_scheme(scheme.spec) == scheme  # the text form round-trips
    parts = scheme.schemes if isinstance(scheme, Stack) else (scheme,)
    given_parts = _given_params(text)
    assert [p.name for p in parts] == [name for name, _ in given_parts]
    for part, (_, params) in zip(parts, given_parts):
        types = {f.name: str(f.type) for f in fields(part)}  # type: ignore[arg-type]
        for key, raw in params.items():
            assert getattr(part, key) == _spelled(types[key], raw), (text, key)


_SET_KEYS = sorted(k for k in _FIELD_TYPES if k != "task_params")
_VALUES = ["0", "1", "-1", "0.5", "1e-3", "1_0", " 5", "nan", "inf", "true", "false", "no",
           "none", "null", "", "2.5", "18446744073709551616", "deterministic,mc", "[\"mc\"]",
           "sgd", "adam", "plateau", "cpu", "cuda:x", "semeniuta:p=0.3", "x" * 200, "é"]


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.sampled_from(_SET_KEYS), st.one_of(st.sampled_from(_VALUES), st.text(max_size=20)))
def test_set_values(key, raw):
    SEEN["set"] += 1
    base = TrainConfig(task="temporal-order")
    try:
        config = apply_overrides(base, [f"{key}={raw}"])
    except ValueError as e:
        _one_line(e)
        return
    got = getattr(config.net if key in config.net.field_names() else config, key)
    t = _FIELD_TYPES[key]
    if "None" in t and raw.lower() in ("none", "null", ""):
        assert got is None
    elif t.startswith("int"):
        assert re.fullmatch(r"[+-]?[0-9]+", raw) and got == int(raw), (key, raw, got)
    elif t.startswith("float"):
        assert _NUMBER.fullmatch(raw) and got == float(raw), (key, raw, got)
    elif t.startswith("bool"):
        assert got is (raw.lower() in ("1", "true", "yes", "on")), (key, raw, got)
    elif t.startswith("tuple"):
        assert ",".join(got) in (raw, raw.strip("[]").replace('"', "")), (key, raw, got)
    elif key == "scheme":
        assert got == parse_scheme(raw)
    else:
        assert got == raw, (key, raw, got)
    changed = {k for k, v in config.to_dict().items() if v != base.to_dict()[k]}
    assert changed <= {key, "net"}, changed  # nothing else moved
