"""Every real-data task trains end to end from the command line on its fixtures (tiny)."""
from __future__ import annotations

import json

import pytest

from memloss.cli import main
from memloss.runs import load_run
from tests.tasks.data.helpers import FIXTURE_PARAMS


@pytest.mark.parametrize("key", sorted(FIXTURE_PARAMS))
def test_train_from_cli(key, tmp_path):
    params = FIXTURE_PARAMS[key]
    task = "sentiment" if key.startswith("sentiment") else key
    sets = [f"task.{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in params.items()]
    argv = ["train", task, "--out", str(tmp_path / "run")]
    for s in sets + ["hidden_size=8", "batch_size=4", "eval_batch_size=8", "epochs=1",
                     "max_steps=2", 'eval_modes=["deterministic","mc"]', "mc_samples=2",
                     "optimizer=adam", "lr=0.01"]:
        argv += ["--set", s]
    assert main(argv) == 0
    final = json.loads((tmp_path / "run" / "final.json").read_text())
    for mode in ("deterministic", "mc"):
        assert final["metric"] in final["test"][mode]


def test_bidirectional_ner_trains_from_cli(tmp_path):
    """``--set bidirectional=true``: the NER encoder reads both directions; the head sees 2H."""
    argv = ["train", "conll-ner", "--out", str(tmp_path / "run")]
    for s in [f"task.{k}={json.dumps(v) if not isinstance(v, str) else v}"
              for k, v in FIXTURE_PARAMS["conll-ner"].items()] + [
            "bidirectional=true", "hidden_size=8", "batch_size=4", "eval_batch_size=8",
            "epochs=1", "max_steps=2", "scheme=gal:p=0.25", "optimizer=adam", "lr=0.01"]:
        argv += ["--set", s]
    assert main(argv) == 0
    run = tmp_path / "run"
    net = load_run(run).net
    assert net.config.bidirectional and net.rnn.bidirectional and net.head.in_features == 16
    final = json.loads((run / "final.json").read_text())
    assert final["metric"] == "f1" and 0.0 <= final["test"]["deterministic"]["f1"] <= 1.0
