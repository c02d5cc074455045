"""Paper presets: every preset resolves (task, parameters, scheme, net), has a CPU variant,
and its reported numbers are the ones printed in the papers."""
from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import fields, is_dataclass, replace
from pathlib import Path

import pytest

from memloss.commands.ls import listing
from memloss.models import Net, get_cell
from memloss.tasks import TASKS
from memloss.presets import GAL, KRUEGER, OMITTED, PRESETS, SEMENIUTA, ZAREMBA, Preset, scheme_key
from memloss.presets.base import CHAR_CPU, MNIST_CPU

ROOT = Path(__file__).resolve().parents[2]
#: every number the presets report, as the papers print it: paper, table, section, row,
#: split, value, the printed text, the paper's text file and, for the papers whose text keeps
#: a table row on one line, that row's label and the value's column (tests/fixtures/README.md)
FACTS = ROOT / "tests" / "fixtures" / "paper_numbers.csv"
#: where the papers' text files are looked for (not part of the repository): $MEMLOSS_PAPERS,
#: then ``../shared/papers`` beside the repository or beside the working directory
PAPER_DIRS = [Path(d) for d in [os.environ.get("MEMLOSS_PAPERS")] if d] + [
    ROOT.parent / "shared" / "papers", Path.cwd().parent / "shared" / "papers"]
NAMES = PRESETS.list()
#: the task a ``-cpu`` variant trains instead of the paper's (offline stand-ins)
STANDIN = {"ptb-word": "text-word", "ptb-char": "text-char"}


def test_presets_cover_the_papers_tables():
    tables = {(p.paper, p.table) for p in map(PRESETS.get, NAMES)}
    assert {(SEMENIUTA, "Table 1"), (SEMENIUTA, "Table 2"), (GAL, "Table 1"), (ZAREMBA, "Table 1"),
            (KRUEGER, "Table 1"), (KRUEGER, "Table 2"), (KRUEGER, "Table 3")} <= tables
    assert {"zaremba-small", "zaremba-medium", "zaremba-large", "gal-medium-tied",
            "gal-large-untied", "semeniuta-t1-short-moon-sequence",
            "semeniuta-t1-medium-ours-step", "semeniuta-t2-ours-0.25-step"} <= set(NAMES)
    assert OMITTED  # rows left out are listed with a reason


@pytest.mark.parametrize("name", NAMES)
def test_preset_resolves(name):
    p: Preset = PRESETS.get(name)
    c = p.config
    assert c.task in TASKS, f"{name}: task {c.task!r} is not registered"
    cls = TASKS.get(c.task)
    if is_dataclass(cls):
        valid = {f.name for f in fields(cls)}
        assert set(c.task_params) <= valid, f"{name}: unknown task parameters"
    c.net.scheme.sites(get_cell(c.net.cell))
    # the net builds with this scheme (tiny stand-in sizes; file-based tasks need data)
    tokens = ("ptb-word", "ptb-char", "text-word", "text-char", "sentiment")
    kind = {"vocab_size": 11} if c.task in tokens else {"input_size": 4}
    Net(replace(c.net, hidden_size=4, output_size=3, **kind))
    json.dumps(p.to_dict())


#: the only CPU variants whose scheme is not their full preset's
GAL_MOON_SCALED_AT_TEST = {f"gal-{size}-{row}" for size in ("medium", "large")
                           for row in ("moon", "moon-emb")}


@pytest.mark.parametrize("name", [n for n in NAMES if not n.endswith("-cpu")])
def test_every_preset_has_a_cpu_variant(name):
    full, cpu = PRESETS.get(name), PRESETS.get(f"{name}-cpu")
    assert cpu.cpu_of == name and cpu.reported == full.reported and cpu.metric == full.metric
    assert cpu.config.net.cell == full.config.net.cell
    if name in GAL_MOON_SCALED_AT_TEST:
        # the same scheme but for Moon's scaling (scaled at test: with inverted scaling these
        # rows diverge under the CPU regime's Adam)
        assert cpu.config.net.scheme != full.config.net.scheme
        assert re.search(r"(^|\+)moon:[^+]*scaling=expectation", cpu.config.net.scheme.spec)
        assert scheme_key(cpu.config.net.scheme) == scheme_key(full.config.net.scheme)
    else:
        assert cpu.config.net.scheme == full.config.net.scheme
    # the same task, or its offline stand-in (Shakespeare for PTB)
    assert cpu.config.task == STANDIN.get(full.config.task, full.config.task)
    # no more recurrent work per step than the full size (the word-level CPU regime keeps
    # 256 units in one layer where Zaremba's small model has two of 200)
    def work(net):
        return net.num_layers * net.hidden_size * (net.hidden_size + (net.embedding_dim
                                                                      or net.hidden_size))
    assert work(cpu.config.net) <= work(full.config.net) or full.config.net.hidden_size <= 100


def _facts() -> list[dict[str, str]]:
    with FACTS.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _printed_value(fact: dict[str, str]) -> tuple[str, float]:
    """(bound, value) of a printed number: ``<25%`` -> ("<", 0.25); F1 is printed in percent."""
    text = fact["printed"]
    bound = "<" if text.startswith("<") else ""
    number = float(text.lstrip("<").rstrip("%"))
    percent = text.endswith("%") or fact["metric"] in ("f1", "f1_pn")
    return bound, number / 100 if percent else number


TABLES = sorted({(p.paper, p.table) for p in map(PRESETS.get, NAMES)
                 if p.reported and not p.cpu_of})


@pytest.mark.parametrize("paper,table", TABLES, ids=[f"{p.split()[0]}-{t}" for p, t in TABLES])
def test_reported_numbers_are_the_table_of_facts(paper, table):
    """Every number a preset of this table reports is one row of the committed table of facts
    (same paper, table, row, split, metric, value and bound), and every row of it is reported."""
    facts = [f for f in _facts() if f["paper"] == paper.split(",")[0] and f["table"] == table]
    presets = [p for p in map(PRESETS.get, NAMES) if (p.paper, p.table) == (paper, table)
               and not p.cpu_of]
    want = {(p.name, k): (p.row, p.metric, p.bounds.get(k, ""), v)
            for p in presets for k, v in p.reported.items()}
    got = {}
    for f in facts:
        bound, value = _printed_value(f)
        assert value == pytest.approx(float(f["value"]), abs=1e-12), f"{f['preset']}: {f}"
        got[(f["preset"], f["split"])] = (f["row"], f["metric"], bound, float(f["value"]))
    assert len(got) == len(facts), "a (preset, split) is listed twice in " + FACTS.name
    assert got.keys() == want.keys(), (f"{paper} {table}: only in presets "
                                       f"{sorted(want.keys() - got.keys())}, only in {FACTS.name} "
                                       f"{sorted(got.keys() - want.keys())}")
    for key, (row, metric, bound, value) in want.items():
        assert got[key] == (row, metric, bound, pytest.approx(value, abs=1e-12)), key


def test_the_table_of_facts_names_every_table_with_its_section():
    facts = _facts()
    assert {(f["paper"], f["table"]) for f in facts} == {(p.split(",")[0], t) for p, t in TABLES}
    for f in facts:
        assert re.fullmatch(r"\d+(\.\d+)*", f["section"]), f
        assert f["printed"] and f["file"], f


def _table_region(text: str, table: str) -> str:
    """The text from the caption of the table before ``table`` to the caption of the one after
    (the papers' text files put a caption before or after its table's numbers)."""
    n = int(table.split()[1])

    def caption(k: int) -> int | None:
        m = re.search(rf"^!?\[?Table {k}: ", text, re.M)
        return m.start() if m else None

    start, end = (caption(n - 1) if n > 1 else 0), caption(n + 1)
    return text[start or 0:end or len(text)]


def _number(printed: str) -> re.Pattern:
    """``printed`` as a whole number: 97.0 does not match 97.05, 1.46 does not match 1.460."""
    return re.compile(rf"(?<![\d.]){re.escape(printed)}(?!\d|\.\d)")


PAPER_TEXTS = sorted({f["file"] for f in _facts()})


@pytest.mark.parametrize("name", PAPER_TEXTS)
def test_the_facts_are_printed_in_the_papers(name):
    """Against the paper's own text where it is present: each printed number lies in its
    table (between the neighbouring tables' captions) and, where the text keeps a table row on
    one line, in that row's cell of its column."""
    path = next((d / name for d in PAPER_DIRS if (d / name).is_file()), None)
    if path is None:
        pytest.skip(f"paper text {name} is not part of the repository and was not found in "
                    + ", ".join(map(str, dict.fromkeys(PAPER_DIRS)))
                    + "; set MEMLOSS_PAPERS=DIR to check the committed numbers against it "
                    "(test_reported_numbers_are_the_table_of_facts checks them without it)")
    text = path.read_text(encoding="utf-8")
    facts = [f for f in _facts() if f["file"] == name]
    missing = []
    for f in facts:
        region, pattern = _table_region(text, f["checked_in"]), _number(f["printed"])
        if not pattern.search(region):
            missing.append(f"{f['preset']} {f['split']} {f['printed']!r} not in {f['checked_in']}")
            continue
        if f["line"]:
            rows = [line.split("\t") for line in region.splitlines()
                    if line.split("\t")[0] == f["line"]]
            col = int(f["column"])
            if not any(len(r) > col and pattern.search(r[col]) for r in rows):
                missing.append(f"{f['preset']} {f['split']} {f['printed']!r} not in column "
                               f"{col} of row {f['line']!r} of {f['checked_in']}")
    assert facts, f"no row of {FACTS.name} names {name}"
    assert not missing, "\n".join(missing)


def test_specific_numbers():
    assert PRESETS.get("semeniuta-t2-ours-0.25-step").reported == {"valid": 106.1, "test": 100.0}
    assert PRESETS.get("gal-large-untied").reported == {"valid": 77.9, "test": 75.2, "test_mc": 73.4}
    assert PRESETS.get("krueger-t1-zoneout").reported == {"valid": 0.063, "test": 0.069}
    t1 = PRESETS.get("semeniuta-t1-medium-moon-sequence")
    assert t1.reported == {"train": 1.0, "test": 0.25} and t1.bounds == {"test": "<"}
    z = PRESETS.get("zaremba-medium").config
    assert (z.net.num_layers, z.net.hidden_size, z.net.init_range, z.clip, z.epochs,
            z.decay_start) == (2, 650, 0.05, 5.0, 39, 6)
    assert z.lr_decay == pytest.approx(1 / 1.2) and z.net.scheme.spec == "zaremba:p=0.5,scaling=inverted"
    s = PRESETS.get("semeniuta-t2-baseline").config
    assert (s.net.hidden_size, s.lr, s.clip, s.batch_size, s.task_params["bptt"], s.schedule) == \
        (256, 1.0, 10.0, 32, 35, "plateau")
    assert s.lr_decay == pytest.approx(1 / 1.5)


def test_ls_presets_shows_the_papers_numbers():
    rows = dict(listing("presets"))
    assert set(rows) == set(NAMES)
    assert "perplexity" in rows["semeniuta-t2-baseline"] and "130" in rows["semeniuta-t2-baseline"]
    assert "test <0.25" in rows["semeniuta-t1-medium-moon-sequence"]


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"unknown preset 'zaremba-huge'; did you mean "
                                         r"zaremba-large, zaremba-medium, .*\? \(\d+ in all\)$"):
        PRESETS.get("zaremba-huge")


def test_every_table_of_the_four_papers_has_presets():
    tables = {(p.paper, p.table) for p in map(PRESETS.get, NAMES)}
    want = {(SEMENIUTA, f"Table {n}") for n in range(1, 6)}
    want |= {(GAL, "Table 1"), (GAL, "Figure 2"), (GAL, "Figure 3"), (GAL, "Figure 4"),
             (ZAREMBA, "Table 1"), (KRUEGER, "Table 1"), (KRUEGER, "Table 2"),
             (KRUEGER, "Table 3")}
    assert want <= tables


@pytest.mark.parametrize("table,count", [("Table 1", 12), ("Table 2", 26), ("Table 3", 26),
                                         ("Table 4", 12), ("Table 5", 36)])
def test_semeniuta_tables_have_every_row(table, count):
    rows = [n for n in NAMES if not n.endswith("-cpu") and PRESETS.get(n).paper == SEMENIUTA
            and PRESETS.get(n).table == table]
    assert len(rows) == count


def test_rows_the_new_scheme_options_express():
    assert PRESETS.get("semeniuta-t2-fd-ours-0.25-step").config.net.scheme.spec == (
        "semeniuta:p=0.25,sampling=step,scaling=inverted+zaremba:p=0.2,scaling=inverted,"
        "p_output=0.5")
    assert PRESETS.get("semeniuta-t2-fd-baseline").reported == {"valid": 94.1, "test": 89.5}
    assert PRESETS.get("semeniuta-t2-gal-0.5-step").reported == {"valid": 118.3, "test": 112.5}
    assert PRESETS.get("semeniuta-t3-ours-0.25-step").reported == {"valid": 1.338, "test": 1.301}
    assert PRESETS.get("semeniuta-t1-medium-gal-step").config.net.scheme.sampling == "step"
    assert PRESETS.get("krueger-t1-zoneout").config.net.scheme.shared is True
    assert PRESETS.get("gal-medium-moon-emb").reported == {"valid": 88.9, "test": 86.5}
    assert not any("gal-step" in k or "forward" in k for k in OMITTED)


def test_existing_table1_presets_keep_their_settings():
    """The Table 1 presets as first released (runs of them must stay resumable), but for
    the medium CPU runs' epochs: 15 -> 50 (docs/fidelity.md; a 15-epoch run is extended
    with `memloss train --resume RUN --set epochs=50`)."""
    p = PRESETS.get("semeniuta-t1-medium-gal-sequence-cpu")
    assert p.settings["scheme"] == "gal:p=0,p_recurrent=0.5"
    assert (p.settings["hidden_size"], p.settings["optimizer"], p.settings["lr"],
            p.settings["epochs"], p.settings["task_params"]) == (
        64, "adam", 0.01, 50, {"length": "medium", "valid_size": 1000, "test_size": 2000})
    assert PRESETS.get("semeniuta-t1-short-gal-sequence-cpu").settings["epochs"] == 15
    assert PRESETS.get("semeniuta-t1-short-moon-step").settings["scheme"] == \
        "moon:p=0.5,sampling=step"


#: the character-level tables, whose -cpu presets train memloss.presets.base.CHAR_CPU
CHAR_TABLES = ("semeniuta-t3-", "krueger-t2-")


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith(CHAR_TABLES)
                                  and n.endswith("-cpu")])
def test_character_level_tables_train_the_piloted_regime(name):
    """One layer of 256 units (embedding 32) on the first 50,000 training characters,
    slices of 100 in batches of 8, Adam 0.006 for 25 epochs, validated every epoch on the
    first 50,000 validation characters (docs/pilots/c50k-b8-lr6-*.csv); each table keeps its
    clipping and initialisation."""
    cpu = PRESETS.get(name).config
    full = PRESETS.get(name.removesuffix("-cpu")).config
    assert cpu.task == "text-char"
    assert cpu.task_params == {"batching": "slices", "bptt": 100, "train_tokens": 50_000,
                               "valid_tokens": 50_000}
    assert (cpu.net.num_layers, cpu.net.hidden_size, cpu.net.embedding_dim) == (1, 256, 32)
    assert (cpu.batch_size, cpu.optimizer, cpu.lr, cpu.schedule, cpu.epochs, cpu.max_steps,
            cpu.eval_every) == (8, "adam", 0.006, "constant", 25, None, None)
    assert (cpu.clip, cpu.net.init_range) == (full.clip, full.net.init_range)


@pytest.mark.parametrize("base, regularized", [
    ("c50k-b8-lr6-base", "c50k-b8-lr6-ours"),
    ("c50k-b8-lr6-krueger-lstm", "c50k-b8-lr6-krueger-zc0.5-zh0.05")])
def test_the_character_level_regime_overfits_within_its_epochs_in_its_pilots(base, regularized):
    """Within the regime's epochs, the recorded pilot curves (docs/pilots/) of each table's
    baseline and of one regularized row pass the overfitting rule
    (memloss.evidence.overfits), and the regularized row is best later and lower."""
    from memloss.evidence import overfits

    epochs = CHAR_CPU["epochs"]

    def curve(pilot: str) -> list[float]:
        with (ROOT / "docs" / "pilots" / f"{pilot}.csv").open(encoding="utf-8") as f:
            return [float(r["valid_bpc"]) for r in csv.DictReader(f)][:epochs]

    plain, reg = curve(base), curve(regularized)
    assert len(plain) == len(reg) == epochs
    assert overfits(plain, lower_is_better=True) and overfits(reg, lower_is_better=True)
    assert plain.index(min(plain)) < reg.index(min(reg)) and min(reg) < min(plain)


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("krueger-t1-")
                                  and n.endswith("-cpu")])
def test_permuted_mnist_table_trains_the_piloted_regime(name):
    """Fashion-MNIST in one fixed pixel order, 16 pixels per step (49 steps), the first
    1,000 training images, 2,000 held out for validation, one layer of 128 units, Adam 0.003
    for 40 epochs (docs/pilots/k1-b16-*.csv); each row keeps its clipping and batch size."""
    cpu = PRESETS.get(name).config
    full = PRESETS.get(name.removesuffix("-cpu")).config
    assert cpu.task == "permuted-mnist"
    assert cpu.task_params == {"source": "fashion-mnist", "pixels_per_step": 16,
                               "train_size": 1000, "valid_size": 2000}
    assert (cpu.net.num_layers, cpu.net.hidden_size) == (1, 128)
    assert (cpu.optimizer, cpu.lr, cpu.schedule, cpu.epochs, cpu.max_steps, cpu.eval_every) == (
        "adam", 0.003, "constant", 40, None, None)
    assert (cpu.clip, cpu.batch_size, cpu.net.scheme) == (full.clip, full.batch_size, full.net.scheme)


def test_the_permuted_mnist_regime_overfits_by_its_validation_loss_in_its_pilots():
    """The recorded pilots (docs/pilots/k1-b16-*.csv): the LSTM's validation loss passes
    its minimum and rises by the rule (memloss.evidence.overfits) within the regime's
    epochs, while its validation error is still at its best in the last epoch (why the rule
    reads a classifier's loss); zoneout's loss is best later and lower and rises less."""
    from memloss.evidence import overfits

    def curve(pilot: str, column: str) -> list[float]:
        with (ROOT / "docs" / "pilots" / f"k1-b16-{pilot}.csv").open(encoding="utf-8") as f:
            return [float(r[column]) for r in csv.DictReader(f)][:MNIST_CPU["epochs"]]

    plain, reg = curve("lstm", "valid_loss"), curve("zoneout", "valid_loss")
    assert len(plain) == len(reg) == MNIST_CPU["epochs"]
    assert overfits(plain, lower_is_better=True)
    assert not overfits(curve("lstm", "valid_error"), lower_is_better=True)
    assert plain.index(min(plain)) < reg.index(min(reg)) and min(reg) < min(plain)
    assert reg[-1] / min(reg) < plain[-1] / min(plain)
