"""What a scheme does, in words: ``memloss ls schemes`` and ``memloss describe`` show every
parameter with its default and meaning, a run logs its resolved scheme, and an unknown name
is one short line with the closest names."""
from __future__ import annotations

import logging
from dataclasses import fields

import pytest

from memloss.cli import main
from memloss.core.registry import Registry
from memloss.models.schemes import SCHEMES


def test_every_scheme_parameter_has_a_meaning():
    for name in SCHEMES.list():
        for f in fields(SCHEMES.get(name)):
            assert len(f.metadata.get("help", "")) > 10, (name, f.name)


def test_ls_schemes_shows_each_parameter_with_its_default_and_meaning(capsys):
    assert main(["ls", "schemes"]) == 0
    out = capsys.readouterr().out
    for name in SCHEMES.list():
        for f in fields(SCHEMES.get(name)):
            assert any(ln.startswith(f"    {f.name}={f.default}") and f.metadata["help"] in ln
                       for ln in out.splitlines()), (name, f.name)
    gal = out[out.index("\ngal "):]
    assert "    p_recurrent=0.25" in gal.split("\nmoon ")[0]


def test_describe_shows_what_a_scheme_text_resolves_to(capsys):
    assert main(["describe", "gal:p=0.3+weight-drop"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("gal: Gal 2016 variational")
    assert any(ln.startswith("  p=0.3 (default 0.25)") for ln in out)
    assert any(ln.startswith("  p_recurrent=0.25 ") and "h_{t-1}" in ln for ln in out)
    assert any(ln.startswith("weight-drop: ") for ln in out)
    assert out[-1] == ("resolved: gal:p=0.3,p_recurrent=0.25,p_embedding=0.0,tied=True,"
                       "scaling=inverted+weight-drop:p=0.5,scaling=inverted")
    assert main(["describe", "none"]) == 0
    assert "(no parameters)" in capsys.readouterr().out


def test_an_unknown_name_is_one_short_line_with_the_closest(capsys):
    assert main(["describe", "gal:q=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has no parameter 'q'" in err
    assert main(["train", "zaremba-hugee", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and len(err) < 200, err
    assert "'zaremba-hugee'; did you mean zaremba-large, zaremba-medium" in err


def test_registry_lists_few_names_and_suggests_among_many():
    few: Registry[int] = Registry("colour")
    for i, n in enumerate(("red", "green", "blue")):
        few.register(n)(i)
    with pytest.raises(ValueError, match=r"^unknown colour 'gren'; valid choices: red, green, "
                                         r"blue$"):
        few.get("gren")
    many: Registry[int] = Registry("preset")
    names = [f"paper-t{t}-{s}-{c}" for t in (1, 2, 3) for s in ("short", "long")
             for c in ("cpu", "gpu", "tpu")]
    for i, n in enumerate(names):
        many.register(n)(i)
    with pytest.raises(ValueError, match=r"^unknown preset 'paper-t2-long-cpx'; did you mean "
                                         r"paper-t2-long-cpu, .*\? \(18 in all\)$"):
        many.get("paper-t2-long-cpx")
    with pytest.raises(ValueError, match=r"^unknown preset 'zzz'; no close match \(18 in all\)$"):
        many.get("zzz")


def test_a_run_logs_its_resolved_scheme(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="memloss.training.trainer")
    assert main(["train", "temporal-order", "--scheme", "gal:p=0.3", "--set", "max_steps=1",
                 "--set", "hidden_size=4", "--set", "task.train_size=8", "--set",
                 "task.valid_size=8", "--set", "task.test_size=8", "--set", "batch_size=4",
                 "--out", str(tmp_path / "run")]) == 0
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("scheme: ")]
    assert said == ["scheme: gal:p=0.3,p_recurrent=0.25,p_embedding=0.0,tied=True,"
                    "scaling=inverted"]
