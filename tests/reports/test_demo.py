"""The demo end to end at a tiny size (the full demo is not a test), and its pieces."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from memloss.cli import main
from memloss.demo import SCHEMES, SIZES, DemoConfig, table1


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory) -> tuple[Path, str, list[str]]:
    """The tiny demo's output folder, what it printed, and what it logged."""
    out = tmp_path_factory.mktemp("demo") / "out"
    import io
    import logging
    from contextlib import redirect_stdout

    logged: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    logger = logging.getLogger("memloss.demo")
    handler, level = Keep(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    buf = io.StringIO()
    try:
        with redirect_stdout(buf):
            assert main(["demo", "--size", "tiny", "--out", str(out)]) == 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return out, buf.getvalue(), logged


def test_tiny_demo_writes_results_and_report(tiny_demo):
    out, printed, _ = tiny_demo
    results = pd.read_csv(out / "results.csv", keep_default_na=False)
    cfg = SIZES["tiny"]
    assert len(results) == len(cfg.lengths) * len(cfg.schemes) * 2
    assert list(results.columns[:6]) == ["length", "seq_len", "scheme", "sampling", "split",
                                         "accuracy"]
    assert set(results["split"]) == {"train", "test"}
    assert set(results["scheme"]) == {"none", "moon"}
    assert results["accuracy"].between(0, 1).all()
    html = (out / "report.html").read_text()
    for text in ("Semeniuta Table 1: measured (paper)", "What was run",
                 "Test accuracy under each inference mode", "Probe: How the state fades over time",
                 "Probe: Accuracy on longer sequences under each inference mode",
                 "Appendix: Settings", 'href="report-data/probe-state-decay.csv"'):
        assert text in html
    assert html.index('class="verdict"') < html.index("What was run")  # the finding first
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "report-data" / "probe-state-decay.csv").is_file()
    assert not (out / "runs.partial").exists() and not (out / "runs.old").exists()
    assert sorted(p.name for p in (out / "runs").iterdir()) == \
        ["8-moon-sequence", "8-moon-step", "8-none"]
    assert (out / "runs" / "8-none" / "diagnostics" / "state-decay.csv").exists()
    assert "scheme" in printed and "wrote" in printed and "report.html" in printed


def test_the_demo_counts_its_runs(tiny_demo):
    _, _, logged = tiny_demo
    cfg = SIZES["tiny"]
    n = len(cfg.lengths) * len(cfg.schemes)
    starts = [line for line in logged if line.startswith("run ") and " done" not in line]
    assert [line.split(":")[0] for line in starts] == [f"run {k} of {n}" for k in range(1, n + 1)]
    assert sum(line.startswith(f"run {n} of {n} done: ") for line in logged) == 1


def test_table1_puts_the_paper_beside_the_measurement():
    rows = [{"length": "medium", "scheme": "moon", "sampling": "sequence", "split": s,
             "accuracy": a, "paper": p} for s, a, p in (("train", 0.97, "1"),
                                                       ("test", 0.18, "<0.25"))]
    t = table1(pd.DataFrame(rows))
    assert t.to_dict("records") == [{"scheme": "moon", "sampling": "sequence",
                                     "medium train": "97.0% (100%)",
                                     "medium test": "18.0% (<25%)"}]


def test_headline_states_the_finding_with_its_numbers():
    from memloss.demo import headline_text

    rows = []
    for scheme, sampling, train, test, mc in (("moon", "sequence", 0.999, 0.065, 1.0),
                                              ("semeniuta", "step", 1.0, 1.0, 1.0),
                                              ("gal", "sequence", 1.0, 0.99, 1.0)):
        for split, acc in (("train", train), ("test", test)):
            rows.append({"length": "short", "seq_len": 15, "scheme": scheme, "sampling": sampling,
                         "split": split, "accuracy": acc, "mc": mc})
    text = headline_text(pd.DataFrame(rows), 1)
    assert text.startswith("As in the paper's Table 1: Moon's per-sequence cell dropout fits")
    assert "(99.9% train accuracy at T = 15) but fails at test with 6.5% (chance 25%" in text
    assert ("while Semeniuta's update dropout (per step) and Gal's recurrent dropout generalize: "
            "99.0% to 100.0% test accuracy in all 2 runs.") in text
    assert text.endswith(" 1 number deviates from the paper: flagged in the table.")
    assert "3 numbers deviate" in headline_text(pd.DataFrame(rows), 3)
    rows[1]["accuracy"] = 0.9  # moon keeps its memory at test: not the paper's finding
    assert headline_text(pd.DataFrame(rows), 0).startswith("Not as in the paper's Table 1")


def test_an_interrupted_demo_keeps_the_previous_runs(tiny_demo, monkeypatch, tmp_path):
    """New runs are written beside the old ones and swapped in only once all are written."""
    import shutil

    import memloss.training as training
    from memloss.demo import run_demo

    out = tmp_path / "out"
    shutil.copytree(tiny_demo[0], out)
    before = sorted(p.name for p in (out / "runs").iterdir())
    report = (out / "report.html").read_bytes()
    calls = []

    def broken(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    real = training.train
    monkeypatch.setattr(training, "train", broken)
    with pytest.raises(KeyboardInterrupt):
        run_demo(SIZES["tiny"], out, progress=False)
    assert sorted(p.name for p in (out / "runs").iterdir()) == before
    assert (out / "report.html").read_bytes() == report


def test_demo_schemes_use_the_papers_scaling_and_presets_exist():
    from memloss.presets import PRESETS

    for s in SCHEMES:
        if s.name in ("moon", "semeniuta", "gal", "zaremba"):
            assert "scaling=expectation" in s.spec
        if s.family is not None:
            for length in ("short", "medium"):
                assert f"semeniuta-t1-{length}-{s.family}-{s.sampling}" in PRESETS


def test_bad_demo_config():
    with pytest.raises(ValueError, match="hidden_size"):
        replace(SIZES["tiny"], hidden_size=0)
    with pytest.raises(ValueError, match="lengths"):
        DemoConfig(lengths=())


def test_demo_refuses_a_file_as_output(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["demo", "--size", "tiny", "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_cli_size_names_match_demo_sizes():
    from memloss.commands.demo import SIZE_NAMES

    assert set(SIZE_NAMES) == set(SIZES)


def test_forget_bias_is_a_net_setting():
    from memloss.models import Net, NetConfig

    net = Net(NetConfig(hidden_size=3, input_size=2, output_size=2, forget_bias=1.0))
    b = net.rnn.bias_ih_l0 + net.rnn.bias_hh_l0
    assert torch.equal(b[3:6], torch.ones(3))
    with pytest.raises(ValueError, match="cells with a forget gate .*not .gru."):
        NetConfig(cell="gru", input_size=2, forget_bias=1.0)
