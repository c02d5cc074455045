"""final.json scores the test split with both the final and the best-validation weights
(``by_weights``); ``test`` is the one ``restore_best`` chooses."""
from __future__ import annotations

import pytest

from memloss.core.runfiles import read_json
from memloss.runs import load_run
from memloss.training import evaluate, train


def _scores(out, weights):
    run = load_run(out, weights=weights)
    return evaluate(run.net, run.task, "test", batch_size=64)


@pytest.mark.parametrize("restore_best", [True, False])
def test_final_json_records_the_last_and_the_best_weights(tmp_path, tiny_to_config, restore_best):
    # a learning rate large enough that validation gets worse after the first epochs
    cfg = tiny_to_config.replace(optimizer="sgd", lr=20.0, epochs=4, eval_every=1,
                                 restore_best=restore_best)
    out = train(cfg, tmp_path / "r").path
    final = read_json(out / "final.json")
    by = final["by_weights"]
    assert by["last"]["step"] == final["step"] == 12
    assert by["best"]["step"] != by["last"]["step"]  # this run's best is an earlier step
    for kind in ("last", "best"):
        assert by[kind]["test"]["deterministic"] == pytest.approx(_scores(out, kind))
    chosen = "best" if restore_best else "last"
    assert final["weights"] == chosen and final["weights_step"] == by[chosen]["step"]
    assert final["test"] == by[chosen]["test"]


def test_best_at_the_last_step_is_scored_once(tmp_path, tiny_to_config):
    cfg = tiny_to_config.replace(lr=1e-3, epochs=1)  # one evaluation: the last step is the best
    out = train(cfg, tmp_path / "r").path
    final = read_json(out / "final.json")
    assert final["by_weights"]["best"] == final["by_weights"]["last"]
    assert final["by_weights"]["last"]["step"] == final["step"]


def test_a_malformed_by_weights_is_one_clear_error(tmp_path, tiny_to_config):
    from memloss.core.runfiles import RunDirError, write_json
    from memloss.runs import read_final

    out = train(tiny_to_config.replace(epochs=1), tmp_path / "r").path
    final = read_json(out / "final.json")
    final["by_weights"]["last"]["test"] = "x"
    write_json(out / "final.json", final)
    with pytest.raises(RunDirError, match="final.json: field by_weights.last.test: 'x' is not of "
                                          "type 'object'"):
        read_final(out)
