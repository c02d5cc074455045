"""run_probes, the registry and `memloss probe`: every probe on every cell, files on disk."""
from __future__ import annotations

import dataclasses
import json
import os

import pandas as pd
import pytest
import torch

from memloss.diagnostics import BASE_COLUMNS, PROBES, list_probes, make_probe, run_probes
from memloss.diagnostics.saturation import judged_activations
from memloss.cli import main
from memloss.runs import probe_run
from memloss.models import get_cell, list_cells, parse_scheme
from memloss.models.cells import CellSpec

from .toys import FloatTask, net


def tiny(name: str) -> dict:
    """A probe's own tiny parameters (every probe declares them: a new one is covered)."""
    return PROBES.get(name).tiny()


def scheme_for(spec: CellSpec) -> str:
    """A scheme with a mask inside the step where the cell allows it, read from the sites it
    offers (Moon's on a cell state, Semeniuta's on an update, else Gal's)."""
    if "cell" in spec.sites:
        return "moon:p=0.3"
    return "semeniuta:p=0.3" if "update" in spec.sites else "gal:p=0.2"


def test_every_registered_probe_is_listed_with_its_description_and_words(capsys):
    assert main(["ls", "probes"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert sorted(ln.split()[0] for ln in lines) == sorted(PROBES.list()) == sorted(list_probes())
    assert all(len(ln.split(None, 1)) == 2 for ln in lines)
    for name in PROBES.list():
        words = PROBES.get(name).words()
        assert words["title"] and words["title"] != name
        assert all(q["words"] and q["unit"] for q in words["quantities"].values())


@pytest.mark.parametrize("name", PROBES.list())
def test_every_field_declares_its_check_and_a_bad_value_is_one_line(name):
    cls = PROBES.get(name)
    fields = dataclasses.fields(cls)
    assert fields and all("check" in f.metadata for f in fields), "a field without checked()"
    for f in fields:
        with pytest.raises(ValueError) as e:
            cls(**{f.name: object()})  # no field takes an arbitrary object
        assert name in str(e.value) and "\n" not in str(e.value)


def _cell_meaning(name: str, spec: CellSpec, n, result) -> None:
    """What a probe writes follows what the cell declares (its activations, memory, states)."""
    f, summary = result.frame, result.summary
    states = set(spec.state)
    if name == "saturation":
        labels = {a.label for a in judged_activations(spec, n.rnn.nonlinearity)}
        assert set(f["gate"]) == labels  # exactly the declared gates, no other
        if spec.memory is None:
            assert "retain_gate" not in summary
        else:
            assert summary["retain_gate"] == spec.activation(spec.memory.gate).label
            assert summary["retain_kept"] == spec.memory.kept
    elif name == "state-decay":
        norms = {q[:-5] for q in f["quantity"] if q.endswith("_norm")}
        assert norms == states
        memory = spec.memory
        want = set() if memory is None else (
            ({"eq17"} if memory.site in n.rnn.sites else set())
            | ({"eq19"} if "update" in n.rnn.sites else set()))
        assert {q for q in f["quantity"] if q in ("eq17", "eq19")} == want
        assert summary["quantity"] == f"{memory.state if memory else 'h'}_norm"
    elif name == "impulse":
        deltas = {q[6:] for q in f["quantity"] if q.startswith("delta_") and "half" not in q}
        assert deltas == states | {"output"}
    elif name == "gradient-flow":
        grads = {q[5:] for q in f["quantity"] if q.startswith("grad_") and q.count("_") == 1}
        assert grads == states
    elif name == "mask-audit":
        parts = set(f["part"].dropna())
        assert parts <= states | {"output"} and "h" in parts


@pytest.mark.parametrize("cell", list_cells())
@pytest.mark.parametrize("name", PROBES.list())
def test_every_probe_on_every_cell(name, cell):
    spec = get_cell(cell)
    scheme = scheme_for(spec)
    n = net(cell, scheme, layers=2 if cell == "lstm" else 1)
    task = FloatTask(length=6, size=16)
    probe = make_probe(name, **tiny(name))
    result = probe(n, task)
    f = result.frame
    assert len(f) > 0
    assert list(f.columns[:len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    assert set(f["probe"]) == {name} and set(f["cell"]) == {cell}
    assert set(f["scheme"]) == {parse_scheme(scheme).spec} and set(f["scaling"]) <= {"inverted", "expectation"}
    assert f["quantity"].notna().all() and f["mode"].notna().all()
    described = set(probe.quantities) | {task.metric}
    assert set(f["quantity"]) <= described, "quantities without words on the probe class"
    _cell_meaning(name, spec, n, result)
    json.dumps(result.summary, allow_nan=True)


def test_run_probes_writes_csv_and_json_atomically(tmp_path):
    n = net("lstm", "moon:p=0.3").train()
    names = ["state-decay", "retention"]
    results = run_probes(n, FloatTask(), names, tmp_path / "diag",
                         params={k: tiny(k) for k in names}, seed=1)
    assert set(results) == set(names)
    for name in names:
        back = pd.read_csv(tmp_path / "diag" / f"{name}.csv")
        assert list(back.columns) == list(results[name].frame.columns)
        assert len(back) == len(results[name].frame)
        meta = json.loads((tmp_path / "diag" / f"{name}.json").read_text())  # strict JSON
        assert meta["probe"] == name and meta["rows"] == len(back)
        assert meta["title"] == PROBES.get(name).title
        assert set(back["quantity"]) <= set(meta["quantities"])
        assert meta["params"]["batch_size"] == tiny(name)["batch_size"]
    assert not [p for p in os.listdir(tmp_path / "diag") if p.endswith(".tmp")]
    again = run_probes(n, FloatTask(), ["retention"], params={"retention": tiny("retention")},
                       seed=1)
    assert again["retention"].frame.equals(results["retention"].frame)  # seed per probe name
    assert n.training  # run_probes puts the net back in the mode it found it in


def test_run_probes_rejects_bad_requests(tmp_path):
    pair = (net(), FloatTask())
    with pytest.raises(ValueError, match="unknown probe 'nope'"):
        run_probes(*pair, ["nope"])
    with pytest.raises(ValueError, match="do not run"):
        run_probes(*pair, ["saturation"], params={"retention": {}})
    with pytest.raises(ValueError, match="bad parameters"):
        run_probes(*pair, ["saturation"], params={"saturation": {"colour": 1}})
    with pytest.raises(ValueError, match="takes a memloss Net"):
        run_probes(42, FloatTask())
    with pytest.raises(ValueError, match="does not exist"):
        probe_run(tmp_path / "missing")





def test_memloss_probe_on_a_trained_run_directory(tmp_path, capsys):
    from memloss.training import TrainConfig, train

    cfg = TrainConfig(task="temporal-order",
                      task_params={"length": 8, "train_size": 64, "valid_size": 16, "test_size": 32},
                      optimizer="adam", lr=0.01, epochs=1, batch_size=32, progress=False,
                      net=dict(hidden_size=8, scheme="moon:p=0.5,sampling=sequence", path="reference"))
    run = train(cfg, tmp_path / "run").path
    argv = ["probe", str(run), "--probe", "state-decay", "--probe", "test-time-scaling",
            "--set", "state-decay:samples=2", "--set", "test-time-scaling:factors=[1,2]",
            "--set", "test-time-scaling:samples=2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "state-decay:" in out and "test-time-scaling:" in out
    f = pd.read_csv(run / "diagnostics" / "test-time-scaling.csv")
    assert sorted(set(f["length"])) == [8, 16]
    meta = json.loads((run / "diagnostics" / "state-decay.json").read_text())
    assert meta["params"]["samples"] == 2
    assert main(["probe", str(run), "--probe", "bogus"]) == 2
    assert "unknown probe 'bogus'" in capsys.readouterr().err
    assert main(["probe", str(tmp_path / "nowhere")]) == 2
    assert main(["probe", str(run), "--set", "state-decay"]) == 2
    assert "PROBE:KEY=VALUE" in capsys.readouterr().err
    # a second writer (here: a training process resuming the run) holds the lock
    from tests.faults.cases import holding_lock, reap

    before = (run / "diagnostics" / "state-decay.csv").read_bytes()
    holder = holding_lock(run)
    try:
        assert main(["probe", str(run), "--probe", "state-decay"]) == 2
    finally:
        reap(holder)
    err = capsys.readouterr().err
    assert "is being written by process" in err and str(holder) in err and "Traceback" not in err
    assert (run / "diagnostics" / "state-decay.csv").read_bytes() == before


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_probes_run_on_cuda_and_match_cpu():
    n = net("lstm", "moon:p=0.3")
    task = FloatTask(length=6, size=16)
    for name in ("state-decay", "gradient-flow", "saturation"):
        probe = make_probe(name, **tiny(name))
        cpu = probe(n, task, generator=torch.Generator().manual_seed(0)).frame
        gpu = probe(n.cuda(), task, generator=torch.Generator().manual_seed(0)).frame
        n.cpu()
        pd.testing.assert_frame_equal(cpu, gpu, rtol=1e-3, atol=1e-5)
