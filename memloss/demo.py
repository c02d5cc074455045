"""The demo: Semeniuta et al. (2016) Table 1 on the temporal order task, measured and drawn.

``run_demo(DemoConfig, out_dir)`` trains an LSTM on the temporal order task at each length
for every scheme of :data:`SCHEMES`, evaluates train and test accuracy under the inference
modes, runs the probes on every run, and writes ``results.csv`` (one row per length x
scheme x sampling x split), ``report.html`` and ``report.pdf`` (the paper's Table 1 beside
the measured one, then the standard report of the runs) and ``demo.json`` (the config).

The dropout schemes use the paper's convention (Semeniuta eq. 3): no scaling in training,
a factor ``1 - p`` at test time (``scaling=expectation``). Under cell dropout (Moon) that
factor compounds over time (eq. 17), so a net trained with per-sequence masks fits the
training data but loses its memory at test time; dropping the update (eq. 19) or
``h_{t-1}`` (Gal) does not compound. Nothing is downloaded: the data are generated.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from memloss.config import TrainConfig
from memloss.core import runfiles as rf
from memloss.core import validate
from memloss.core.atomic import atomic_write_text
from memloss.core.seeds import stream_seed
from memloss.runs import probe_source

__all__ = ["DemoScheme", "DemoConfig", "SCHEMES", "SIZES", "run_demo",
           "table1", "demo_sizes", "headline_text", "CHANCE"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoScheme:
    """One row family of the demo: a scheme name, its sampling, and its text form."""

    name: str
    sampling: str
    spec: str
    family: str | None = None  # the preset family of Table 1 (moon, gal, ours) or None

    @property
    def key(self) -> str:
        return self.name if self.sampling == "-" else f"{self.name}-{self.sampling}"


#: the demo's schemes (rate 0.5 as in Semeniuta 4.1; zaremba 0.25, see docs/reports.md)
SCHEMES: tuple[DemoScheme, ...] = (
    DemoScheme("none", "-", "none"),
    DemoScheme("zaremba", "step", "zaremba:p=0.25,scaling=expectation"),
    DemoScheme("gal", "sequence", "gal:p=0,p_recurrent=0.5,scaling=expectation", "gal"),
    DemoScheme("moon", "step", "moon:p=0.5,sampling=step,scaling=expectation", "moon"),
    DemoScheme("moon", "sequence", "moon:p=0.5,sampling=sequence,scaling=expectation", "moon"),
    DemoScheme("semeniuta", "step", "semeniuta:p=0.5,sampling=step,scaling=expectation", "ours"),
    DemoScheme("semeniuta", "sequence", "semeniuta:p=0.5,sampling=sequence,scaling=expectation",
               "ours"),
    DemoScheme("zoneout", "step", "zoneout:p_cell=0.5,p_hidden=0.05"),
)

#: probe parameters that keep the probes cheap on a CPU
PROBE_PARAMS: dict[str, dict[str, Any]] = {
    "state-decay": {"samples": 4, "batch_size": 32},
    "impulse": {"samples": 4, "batch_size": 32},
    "gradient-flow": {"samples": 2, "batch_size": 16, "power_iters": 5, "jacobian_stride": 3},
    "test-time-scaling": {"factors": (1.0, 2.0), "samples": 5, "batch_size": 128,
                          "max_batches": 2},
    "saturation": {"batch_size": 64},
    "retention": {"batch_size": 128},
    "uncertainty": {"samples": 5, "batch_size": 256, "max_batches": 2},
}


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo. ``lengths``: temporal-order lengths (``short`` = 15, ``medium`` =
    30). ``forget_bias``: initial LSTM forget-gate bias (1 lets small nets learn the task in
    a few epochs; the paper's nets train 5k epochs instead)."""

    lengths: tuple[str | int, ...] = ("short", "medium")
    schemes: tuple[DemoScheme, ...] = SCHEMES
    hidden_size: int = 64
    epochs: int = 5
    lr: float = 0.01
    batch_size: int = 32
    train_size: int = 6400
    valid_size: int = 500
    test_size: int = 10000
    eval_train_size: int = 2000
    mc_samples: int = 10
    forget_bias: float = 1.0
    probes: tuple[str, ...] | None = None  # None: every registered probe
    probe_params: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(PROBE_PARAMS))
    seed: int = 0
    label: str = "full"
    threads: int | None = 1  # torch intra-op threads while the demo runs (None: unchanged)

    def __post_init__(self) -> None:
        if not self.lengths:
            raise ValueError("DemoConfig.lengths is empty; use e.g. ('short', 'medium')")
        if not self.schemes:
            raise ValueError("DemoConfig.schemes is empty")
        for name in ("hidden_size", "epochs", "batch_size", "train_size", "valid_size",
                     "test_size", "eval_train_size", "mc_samples"):
            validate.integer("DemoConfig", name, getattr(self, name))
        validate.number("DemoConfig", "lr", self.lr, 0.0, low_open=True)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["schemes"] = [asdict(s) for s in self.schemes]
        return d


#: named demo sizes: the full demo, ``--quick`` and the tiny one the tests run
SIZES: dict[str, DemoConfig] = {
    "full": DemoConfig(),
    "quick": DemoConfig(hidden_size=32, epochs=3, train_size=3200, valid_size=200,
                        test_size=2000, eval_train_size=1000, mc_samples=5,
                        probes=("state-decay", "test-time-scaling", "impulse"), label="quick"),
    "tiny": DemoConfig(lengths=(8,), hidden_size=8, epochs=1, train_size=64, valid_size=32,
                       test_size=64, eval_train_size=64, mc_samples=2, batch_size=32,
                       schemes=tuple(s for s in SCHEMES if s.name in ("none", "moon")),
                       probes=("state-decay", "test-time-scaling"), label="tiny",
                       probe_params={"state-decay": {"samples": 2, "batch_size": 8},
                                     "test-time-scaling": {"factors": (1.0, 2.0), "samples": 2,
                                                           "batch_size": 32, "max_batches": 1}}),
}


def demo_sizes() -> list[str]:
    return list(SIZES)


def _train_config(cfg: DemoConfig, scheme: DemoScheme, length: str | int) -> TrainConfig:
    return TrainConfig(
        task="temporal-order",
        task_params={"length": length, "train_size": cfg.train_size,
                     "valid_size": cfg.valid_size, "test_size": cfg.test_size, "seed": cfg.seed},
        net={"cell": "lstm", "hidden_size": cfg.hidden_size, "forget_bias": cfg.forget_bias,
             "scheme": scheme.spec},
        optimizer="adam", lr=cfg.lr, clip=1.0, epochs=cfg.epochs, batch_size=cfg.batch_size,
        eval_modes=("deterministic", "mc", "train-mode"), mc_samples=cfg.mc_samples,
        restore_best=False, seed=cfg.seed, progress=None)


#: inference modes the demo scores the training split under
_TRAIN_MODES = ("deterministic", "mc", "train-mode")


def _score_train_split(run: Any, cfg: DemoConfig) -> None:
    """Score the first ``eval_train_size`` training sequences under every mode (the shared
    evaluation) and record them in the run's final.json under ``train``."""
    from memloss.tasks import evaluate

    gen = torch.Generator().manual_seed(stream_seed(cfg.seed, "train-eval"))
    n = min(cfg.eval_train_size, cfg.train_size)
    final = dict(run.final)
    final["train"] = {mode: evaluate(run.net, run.task, "train", mode=mode,
                                     samples=cfg.mc_samples, batch_size=500, generator=gen,
                                     max_examples=n)
                      for mode in _TRAIN_MODES}
    final["train_examples"] = n
    rf.write_json(run.path / rf.FINAL, final)


def _rows(record: Any) -> list[dict[str, Any]]:
    """The results.csv rows of one demo run, read from its run directory: train and test
    accuracy under each inference mode, the last epoch's training-mode accuracy and the
    paper's number."""
    from memloss.reports.paper import paper_row

    demo = record.config["info"]["demo"]
    preset = paper_row(record.config)
    last = next((r for r in reversed(record.metrics) if "train_accuracy" in r), {})
    rows = []
    for split, headline in (("train", "train-mode"), ("test", "deterministic")):
        acc = {m: v["accuracy"] for m, v in record.final[split].items()}
        during = last.get("train_accuracy", float("nan")) if split == "train" else float("nan")
        paper = ""
        if preset is not None and split in preset.reported:
            paper = f"{preset.bounds.get(split, '')}{preset.reported[split]:g}"
        rows.append({
            "length": str(demo["length"]), "seq_len": record.config["task_info"]["seq_len"],
            "scheme": demo["scheme"], "sampling": demo["sampling"], "split": split,
            "accuracy": acc[headline], "inference": headline,
            "deterministic": acc["deterministic"], "mc": acc["mc"],
            "train_mode": acc["train-mode"], "during_training": during,
            "paper": paper, "preset": "" if preset is None else preset.name,
            "spec": demo["spec"],
        })
    return rows


def _preset(family: str | None, length: str | int, sampling: str) -> Any:
    if family is None or not isinstance(length, str):
        return None
    from memloss.presets import PRESETS

    name = f"semeniuta-t1-{length}-{family}-{sampling}"
    return PRESETS.get(name) if name in PRESETS else None


#: the demo's chance level: four equally likely classes
CHANCE = 0.25


def _cell(measured: float, paper: str) -> str:
    return f"{100 * measured:.1f}%" + (f" ({_percent(paper)})" if paper else "")


def table1(results: pd.DataFrame) -> pd.DataFrame:
    """Semeniuta Table 1 layout: one row per scheme and sampling, one column per length and
    split; each cell is the measured accuracy with the paper's number in brackets."""
    rows = []
    for (scheme, sampling), sub in results.groupby(["scheme", "sampling"], sort=False):
        row: dict[str, Any] = {"scheme": scheme, "sampling": sampling}
        for length in dict.fromkeys(sub["length"]):
            for split in ("train", "test"):
                r = sub[(sub["length"] == length) & (sub["split"] == split)]
                if r.empty:
                    continue
                row[_column(r["length"].iloc[0], r["seq_len"].iloc[0] if "seq_len" in r else None,
                            split)] = _cell(float(r["accuracy"].iloc[0]), r["paper"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


def _column(length: Any, seq_len: Any, split: str) -> str:
    return f"{length}{f' (T={seq_len})' if seq_len is not None and str(seq_len) != str(length) else ''} {split}"


def _percent(paper: str) -> str:
    if not paper:
        return ""
    bound = paper[0] if paper[0] in "<>" else ""
    return f"{bound}{100 * float(paper.lstrip('<>')):g}%"


def _flags(results: pd.DataFrame, table: pd.DataFrame, records: list) -> tuple[tuple, list]:
    """Flags on the Table 1 cells that deviate from the paper or lie below chance, with the
    likely reason (from the run directory: setup beside the paper's, MC accuracy), and the
    setup differences every run shares (stated once under the table, not in each note)."""
    from memloss.reports import Flag
    from memloss.reports.deviations import deviation_note, paper_number, setup_differences
    from memloss.reports.paper import paper_row
    from memloss.reports.wording import metric

    by_run = {(str(r.config["info"]["demo"]["length"]), r.config["info"]["demo"]["scheme"],
               r.config["info"]["demo"]["sampling"]): r for r in records}
    reasons = {id(r): setup_differences(r) for r in records if paper_row(r.config) is not None}
    shared = [x for x in next(iter(reasons.values()), []) if all(x in v for v in reasons.values())]
    acc = metric("accuracy")
    flags = []
    for i, row in table.iterrows():
        for _, res in results[(results["scheme"] == row["scheme"])
                              & (results["sampling"] == row["sampling"])].iterrows():
            record = by_run[(str(res["length"]), res["scheme"], res["sampling"])]
            split = res["split"]
            own = [x for x in reasons.get(id(record), []) if x not in shared]
            note = deviation_note(float(res["accuracy"]), paper_number(paper_row(record.config), split),
                                  acc, CHANCE, reasons=own,
                                  mc=float(res["mc"]) if split == "test" else None)
            if note:
                column = _column(res["length"], res["seq_len"], split)
                flags.append(Flag(int(i), column, f"{res['scheme']}/{res['sampling']}, "
                                                  f"{res['length']} {split}: {note}"))
    return tuple(flags), shared


def _accuracies(results: pd.DataFrame, scheme: str, sampling: str, split: str,
                column: str = "accuracy") -> list[float]:
    sub = results[(results["scheme"] == scheme) & (results["sampling"] == sampling)
                  & (results["split"] == split)]
    return [float(v) for v in sub[column]]


def _pct(values: list[float]) -> str:
    return " and ".join(f"{100 * v:.1f}%" for v in values) or "n/a"


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{100 * low:.1f}%" if f"{low:.3f}" == f"{high:.3f}" else \
        f"{100 * low:.1f}% to {100 * high:.1f}%"


def headline_text(results: pd.DataFrame, n_flags: int) -> str:
    """The demo's finding in two sentences, with the measured numbers: does Moon's
    per-sequence cell dropout fit the training data and fail at test while the update
    (Semeniuta) and recurrent (Gal) dropout generalize, as in the paper's Table 1?"""
    from memloss.reports.wording import counted, deviate

    lengths = " and ".join(f"{n}" for n in dict.fromkeys(results["seq_len"].astype(str)))
    moon_train = _accuracies(results, "moon", "sequence", "train")
    moon_test = _accuracies(results, "moon", "sequence", "test")
    moon_mc = _accuracies(results, "moon", "sequence", "test", "mc")
    ours = {s: _accuracies(results, "semeniuta", s, "test") for s in ("step", "sequence")}
    gal = _accuracies(results, "gal", "sequence", "test")
    names = []
    if any(ours.values()):
        names.append("Semeniuta's update dropout (per " + " and per ".join(
            s for s, v in ours.items() if v) + ")")
    if gal:
        names.append("Gal's recurrent dropout")
    good = [v for vals in (*ours.values(), gal) for v in vals]
    if not moon_train:
        return (f"Test accuracy at T = {lengths}: " + " and ".join(names)
                + (f" {_span(good)}" if good else "") + f" (chance {100 * CHANCE:g}%).")
    fits = all(v >= 0.9 for v in moon_train)
    fails = all(v <= CHANCE + 0.1 for v in moon_test)
    generalize = all(v >= 0.9 for v in good)
    verdict = ("As in the paper's Table 1" if fits and fails and generalize else
               "Not as in the paper's Table 1")
    text = (f"{verdict}: Moon's per-sequence cell dropout fits the training data "
            f"({_pct(moon_train)} train accuracy at T = {lengths}) but "
            + (f"fails at test with {_pct(moon_test)}" if fails
               else f"scores {_pct(moon_test)} at test")
            + f" (chance {100 * CHANCE:g}%; {_pct(moon_mc)} with MC inference)")
    if good:
        text += (", while " + " and ".join(names)
                 + (" generalize: " if generalize else " score ")
                 + f"{_span(good)} test accuracy in {'all ' if len(good) > 1 else ''}"
                 + counted(len(good), "run"))
    text += "."
    if n_flags:
        text += f" {deviate(n_flags)} from the paper: flagged in the table."
    return text


def _headline(cfg: DemoConfig, results: pd.DataFrame, records: list) -> Any:
    from memloss.reports import Figure, Headline, Table
    from memloss.reports.plots import BarPlot

    t1 = table1(results)
    flags, shared = _flags(results, t1, records)
    decisive = tuple(i for i, r in t1.iterrows() if (r["scheme"], r["sampling"]) == ("moon", "sequence"))
    table = Table("Semeniuta Table 1: measured (paper)", t1,
                  "Accuracy on the temporal order task; in brackets Semeniuta et al. (2016) "
                  "Table 1, empty where the paper has no such row. Train: train-mode "
                  "inference on training sequences; test: deterministic inference. Flagged: "
                  "more than 10 points from the paper, or below chance."
                  + (" Every run's setup differs from the paper's (the likely reason for a "
                     "deviation): " + "; ".join(shared) + "." if shared else ""),
                  flags=flags, highlight=decisive)
    bars = results.assign(
        run=results["scheme"] + "/" + results["sampling"].str.replace("-", "", regex=False)
        .str.replace("sequence", "seq", regex=False),
        panel=[f"{length} (T={n})" for length, n in zip(results["length"], results["seq_len"])],
        paper_value=[float(p.lstrip("<>")) if p else float("nan") for p in results["paper"]],
        paper_bound=[p[0] if p and p[0] in "<>" else "" for p in results["paper"]])
    bars["run"] = bars["run"].str.rstrip("/")
    chart = Figure("Train and test accuracy per scheme",
                   BarPlot(bars, x="run", y="accuracy", hue="split", col="panel",
                           xlabel="scheme/sampling", ylabel="accuracy (fraction correct)",
                           ylim=(0.0, 1.05), chance=CHANCE, paper="paper_value",
                           paper_bound="paper_bound"),
                   "Train: train-mode inference on training sequences; test: deterministic "
                   f"inference. Dashed: chance ({CHANCE:g}). Black marks: the paper's Table 1 "
                   "(a triangle for '<25%'). One run per bar (seed "
                   f"{cfg.seed}).")
    return Headline(headline_text(results, len(flags)), chart, table)


def _lead_sections(cfg: DemoConfig, results: pd.DataFrame) -> list:
    from memloss.reports.document import Section, Table, Text

    lengths = ", ".join(f"{n} ({l})" for n, l in dict.fromkeys(
        zip(results["length"], results["seq_len"])))
    intro = Text(
        "Temporal order task (Semeniuta et al. 2016, section 4.1): classify the order of two "
        "symbols A/B hidden in a sequence of C/D distractors, one in the first third and one "
        f"in the second; the prediction is read after the last step. Lengths: {lengths}. "
        "Chance is 25%.\n\n"
        "Dropout schemes use the paper's convention (eq. 3): no scaling during training and "
        "a factor 1-p at test time. Under Moon's cell dropout that factor multiplies the "
        "cell state at every step, so the memory of the first symbol is scaled by (1-p)^t at "
        "test time (eq. 17): a net trained with per-sequence masks fits the training data but "
        "fails at test. Dropping the update g (Semeniuta, eq. 19) or h_{t-1} (Gal) does not "
        "compound, and those nets generalize. With per-sequence masks and no training-time "
        "scaling, Moon's and Semeniuta's schemes compute the same function in training; "
        "their training runs coincide and only the test-time factor differs.\n\n"
        f"Smaller than the paper (measured here, on a CPU): one LSTM layer of {cfg.hidden_size} "
        f"units (paper 256), Adam lr {cfg.lr:g} with gradient clipping 1 for {cfg.epochs} "
        f"epochs of {cfg.train_size // cfg.batch_size} minibatches of {cfg.batch_size} (paper: "
        f"SGD lr 0.1 for 5k epochs of 200 minibatches), forget-gate bias initialised to "
        f"{cfg.forget_bias:g}, test on {cfg.test_size} sequences (paper 10k), one seed "
        f"({cfg.seed}). Demo size: {cfg.label}. The paper reports Gal and its own method in "
        "one column ('Gal (2015); Ours'). Zaremba's forward dropout (rate 0.25, not part of "
        "Table 1) drops the one-hot input symbols themselves, which bounds its training-mode "
        "accuracy.")
    modes = _mode_table(results)
    return [Section("What was run", (intro,)),
            Section("Test accuracy under each inference mode",
                    (Text("The same nets scored on the test split under the three inference "
                          "modes: deterministic (expected masks, the paper's test-time "
                          f"scaling), MC (mean of the predicted probabilities over {cfg.mc_samples} "
                          "mask samples) and train-mode (one mask sample). A net that loses "
                          "its memory only through the test-time factor recovers under MC."),
                     modes))]


def _mode_table(results: pd.DataFrame) -> "Any":
    from memloss.reports.document import Table

    test = results[results["split"] == "test"]
    rows = []
    for _, r in test.iterrows():
        rows.append({"scheme": r["scheme"], "sampling": r["sampling"],
                     "length": f"{r['length']} (T={r['seq_len']})",
                     "deterministic": f"{100 * r['deterministic']:.1f}%",
                     "MC": f"{100 * r['mc']:.1f}%", "train-mode": f"{100 * r['train_mode']:.1f}%"})
    frame = pd.DataFrame(rows)
    decisive = tuple(i for i, r in enumerate(rows) if (r["scheme"], r["sampling"]) == ("moon", "sequence"))
    return Table("Test accuracy per inference mode", frame, highlight=decisive)


def run_demo(cfg: DemoConfig, out_dir: "str | Path", *, progress: bool | None = None) -> dict:
    """Run the whole demo into ``out_dir``; returns ``{"results": DataFrame, "seconds",
    "report": (html, pdf)}``. Run directories are written to ``out_dir/runs.partial/`` and
    replace ``out_dir/runs/`` only once all of them are written (an interrupted demo leaves
    the previous runs and report in place). Every number the report shows is written into the run directories
    first (final.json holds the train-split accuracies too), and the results table and the
    report are read back from them. The wall time goes to ``timing.json`` (not into the
    report, whose bytes depend only on the results)."""
    from memloss.diagnostics import list_probes

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a directory for the demo's outputs")
    probes = list(cfg.probes) if cfg.probes is not None else list_probes()
    params = {k: v for k, v in cfg.probe_params.items() if k in probes}
    if cfg.threads is not None:
        # the demo's nets are tiny: one thread per process is faster than several, and much
        # faster on a shared machine (spinning threads contend for the cores)
        old_threads = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        try:
            return _run(cfg, out, probes, params, progress)
        finally:
            torch.set_num_threads(old_threads)
    return _run(cfg, out, probes, params, progress)


def _swap_in(staged: Path, runs_dir: Path) -> None:
    """Put the new run directories in place of the old ones (the old ones are removed only
    once the new ones are all written and in place)."""
    import shutil

    old = runs_dir.with_name(runs_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if runs_dir.exists():
        os.replace(runs_dir, old)
    os.replace(staged, runs_dir)
    if old.exists():
        log.info("replaced the previous demo runs in %s", runs_dir)
        shutil.rmtree(old)


def _run(cfg: DemoConfig, out: Path, probes: list[str],
         params: dict[str, dict[str, Any]], progress: bool | None) -> dict:
    from memloss.diagnostics import run_probes
    from memloss.reports import read_runs, report_from_records, write_report
    from memloss.training import train

    import shutil

    runs_dir = out / "runs"
    staged = out / "runs.partial"  # new runs go here until all are written
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    jobs = [(length, s) for length in cfg.lengths for s in cfg.schemes]
    disable = (not sys.stderr.isatty()) if progress is None else not progress
    start = time.perf_counter()
    run_dirs: list[Path] = []
    bar = tqdm(jobs, desc="demo runs", unit="run", disable=disable)
    for k, (length, scheme) in enumerate(bar, 1):
        bar.set_postfix_str(f"{length} {scheme.key}")
        log.info("run %d of %d: length %s, %s", k, len(jobs), length, scheme.key)
        tc = _train_config(cfg, scheme, length)
        run_dir = staged / f"{length}-{scheme.key}"
        t0 = time.perf_counter()
        preset = _preset(scheme.family, length, scheme.sampling)
        info: dict[str, Any] = {"demo": {"size": cfg.label, "length": length,
                                         "scheme": scheme.name, "sampling": scheme.sampling,
                                         "spec": scheme.spec}}
        if preset is not None:
            info["preset"] = preset.record()
        run = train(tc, run_dir, command=["memloss", "demo", f"--size={cfg.label}"], info=info)
        t1 = time.perf_counter()
        _score_train_split(run, cfg)
        run_probes(run.net, run.task, probes, run_dir / rf.DIAGNOSTICS, params=params,
                   seed=cfg.seed, source=probe_source(run))
        t2 = time.perf_counter()
        run_dirs.append(runs_dir / run_dir.name)
        log.info("run %d of %d done: length %s, %s (train %.1fs, eval+probes %.1fs)", k,
                 len(jobs), length, scheme.key, t1 - t0, t2 - t1)
    bar.close()
    _swap_in(staged, runs_dir)
    records = read_runs(run_dirs)
    results = pd.DataFrame([row for record in records for row in _rows(record)])
    atomic_write_text(out / "results.csv", results.to_csv(index=False, float_format="%.4f"))
    atomic_write_text(out / "demo.json", json.dumps(cfg.to_dict(), indent=2, default=str) + "\n")
    seconds = time.perf_counter() - start
    report = report_from_records(records,
                                 title="memloss demo: memory loss on the temporal order task",
                                 subtitle="Semeniuta et al. (2016) Table 1, reproduced at CPU "
                                          f"size ({cfg.label} demo)",
                                 headline=_headline(cfg, results, records),
                                 lead=_lead_sections(cfg, results),
                                 # its Table 1 (one seed per row) replaces both
                                 skip=("results", "paper-tables"))
    paths = write_report(report, out / "report")
    total = time.perf_counter() - start
    atomic_write_text(out / "timing.json", json.dumps(
        {"seconds_total": round(total, 1), "seconds_before_report": round(seconds, 1),
         "size": cfg.label}, indent=2) + "\n")
    log.info("demo finished in %.0f s: %s, %s, %s", total, out / "results.csv", *paths)
    return {"results": results, "seconds": total, "report": paths}
