"""Paper presets: each row of the source papers' tables as a named TrainConfig plus the number
the paper reports for it (``memloss ls presets``; ``memloss train PRESET``).

Every setup and number below is taken from the papers in ``shared/papers/`` (section and
table named in each preset); where a paper leaves a setting unstated, the preset's
``notes`` say so and what is used instead. Each preset has a ``-cpu`` variant: the same
task and scheme at a size that trains in minutes on a CPU (its numbers are not comparable
with the paper's). Rows whose regularizer has no scheme in :mod:`memloss.models.schemes` are
left out and listed in :data:`OMITTED`.

A preset keeps its settings as plain values; its :class:`~memloss.config.TrainConfig` is
built (and validated) when first asked for, so importing this module builds no config.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Sequence

from memloss.config import NET_FIELDS, TrainConfig
from memloss.core.registry import Registry
from memloss.models import parse_scheme

__all__ = ["Preset", "PRESETS", "get_preset", "list_presets", "OMITTED", "match_preset",
           "scheme_key"]

SEMENIUTA = "Semeniuta et al. 2016, Recurrent Dropout without Memory Loss"
ZAREMBA = "Zaremba et al. 2014, Recurrent Neural Network Regularization"
GAL = "Gal & Ghahramani 2016, A Theoretically Grounded Application of Dropout in RNNs"
KRUEGER = "Krueger et al. 2016, Zoneout"


@dataclass(frozen=True)
class Preset:
    """A paper's setup for one table row and the number(s) it reports.

    ``reported`` maps what was measured (``train``, ``valid``, ``test``, ``test_mc``) to the
    value in units of ``metric`` (accuracy as a fraction, error rate, perplexity, bpc).
    ``bounds`` marks values reported as an inequality (e.g. ``{"test": "<"}`` for "<25%").
    ``cpu_of`` names the full preset a ``-cpu`` variant shrinks. ``settings``: the
    TrainConfig's options by name (net fields by their plain names, as ``--set`` takes them).
    """

    name: str
    paper: str
    table: str
    row: str
    metric: str
    reported: dict[str, float]
    settings: dict[str, Any]
    notes: str = ""
    bounds: dict[str, str] = field(default_factory=dict)
    cpu_of: str | None = None

    @cached_property
    def config(self) -> TrainConfig:
        """The preset's TrainConfig (built on first use)."""
        s = dict(self.settings)
        net = {k: s.pop(k) for k in list(s) if k in NET_FIELDS}
        return TrainConfig(**s, net=net)

    def describe(self) -> str:
        shown = ", ".join(f"{k} {self.bounds.get(k, '')}{v:g}" for k, v in self.reported.items())
        head = f"{self.paper.split(',')[0]} {self.table}: {self.row}"
        if self.cpu_of:
            return f"CPU-sized {head} (paper: {shown or 'no number'})"
        return f"{head} -> {self.metric} {shown or '(no number in the provided text)'}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "paper": self.paper, "table": self.table, "row": self.row,
                "metric": self.metric, "reported": dict(self.reported), "bounds": dict(self.bounds),
                "notes": self.notes, "cpu_of": self.cpu_of, "config": self.config.to_dict()}

    def record(self) -> dict[str, Any]:
        """What a run's config.json records of the preset it reproduces (``info.preset``):
        the paper row, its numbers and the paper's own setup (``paper_settings``: the full
        preset's settings, also for a ``-cpu`` variant), which reports compare the run's
        setup with when a number deviates."""
        d = self.to_dict()
        d.pop("config")
        full = PRESETS.get(self.cpu_of) if self.cpu_of else self
        d["paper_settings"] = dict(full.settings)
        return d


PRESETS: Registry[Preset] = Registry("preset")

#: table rows with no preset, and why
OMITTED: dict[str, str] = {}


def _add(preset: Preset, cpu: dict[str, Any]) -> None:
    """Register a preset and its ``-cpu`` variant (``cpu``: TrainConfig changes;
    ``task_params`` there is merged into the preset's)."""
    PRESETS.register(preset.name, preset.describe())(preset)
    cpu = dict(cpu)
    full_params = preset.settings.get("task_params", {})
    params = {**full_params, **cpu.pop("task_params", {})}
    small = {**preset.settings, "task_params": params, **cpu}
    variant = Preset(f"{preset.name}-cpu", preset.paper, preset.table, preset.row, preset.metric,
                     dict(preset.reported), small,
                     f"CPU-sized variant of {preset.name} ({', '.join(f'{k}={v}' for k, v in cpu.items())}"
                     f"{', task ' + str(params) if params != full_params else ''}); "
                     "numbers are not comparable with the paper's.",
                     dict(preset.bounds), cpu_of=preset.name)
    PRESETS.register(variant.name, variant.describe())(variant)


# --- Semeniuta et al. 2016, Section 4.1, Table 1: temporal order ------------------------------
# Setup (4.1): one-layer LSTM, 256 units, recurrent dropout 0.5, SGD lr 0.1, 5k epochs,
# 200 mini-batches of 32 sequences for training, 10k test sequences.
# Table 1 (accuracies): Moon per-step: short 100/100, medium 25/25; Moon per-sequence: short
# 100/25, medium 100/<25; "Gal (2015); Ours" (one column for both): 100% everywhere.
_T1 = {
    ("moon", "step"): {"short": (1.00, 1.00), "medium": (0.25, 0.25)},
    ("moon", "sequence"): {"short": (1.00, 0.25), "medium": (1.00, 0.25)},
    ("gal", "sequence"): {"short": (1.00, 1.00), "medium": (1.00, 1.00)},
    ("ours", "step"): {"short": (1.00, 1.00), "medium": (1.00, 1.00)},
    ("ours", "sequence"): {"short": (1.00, 1.00), "medium": (1.00, 1.00)},
}
_T1_SCHEME = {"moon": "moon:p=0.5,sampling={s}", "gal": "gal:p=0,p_recurrent=0.5",
              "ours": "semeniuta:p=0.5,sampling={s}"}
_T1_ROW = {"moon": "Moon et al. (2015)", "gal": "Gal (2015)", "ours": "Ours (update dropout)"}
OMITTED["semeniuta-t1-*-gal-step"] = ("Gal's recurrent-site dropout is per sequence only in "
                                      "memloss.models.schemes (the 'gal' scheme has no sampling option)")

for (family, sampling), by_len in _T1.items():
    for length, (train_acc, test_acc) in by_len.items():
        bounds = {"test": "<"} if (family, sampling, length) == ("moon", "sequence", "medium") else {}
        _add(Preset(
            f"semeniuta-t1-{length}-{family}-{sampling}", SEMENIUTA, "Table 1",
            f"{_T1_ROW[family]}, {sampling} sampling, {length} sequences", "accuracy",
            {"train": train_acc, "test": test_acc},
            dict(task="temporal-order", task_params={"length": length}, hidden_size=256,
                        scheme=_T1_SCHEME[family].format(s=sampling), optimizer="sgd", lr=0.1,
                        epochs=5000, batch_size=32),
            notes=("Section 4.1 setup. Moon per-sequence, medium: the paper reports the test "
                   "accuracy as '<25%' (worse than chance)." if bounds else "Section 4.1 setup."),
            bounds=bounds),
            # CPU: 64 units, Adam so that a few epochs suffice (the paper's SGD lr 0.1 needs
            # thousands of epochs); validation on 1000 and test on 2000 sequences.
            {"hidden_size": 64, "optimizer": "adam", "lr": 0.01, "epochs": 15,
             "task_params": {"valid_size": 1000, "test_size": 2000}})

# --- Semeniuta et al. 2016, Section 4.2, Table 2: word-level PTB -------------------------------
# Setup (4.2): one layer of 256 cells, init U[-0.05, 0.05], plain SGD, batch 32, max-norm
# clipping 10, lr 1, BPTT 35, lr divided by 1.5 when validation does not improve.
# Table 2, upper part (no forward dropout), (valid, test) perplexity:
_T2 = {
    ("none", 0.0, None): (130.0, 125.2),
    ("moon", 0.25, "step"): (113.0, 108.7), ("moon", 0.5, "step"): (124.0, 116.5),
    ("moon", 0.25, "sequence"): (121.0, 113.0), ("moon", 0.5, "sequence"): (137.7, 126.2),
    ("gal", 0.25, "sequence"): (120.5, 114.0), ("gal", 0.5, "sequence"): (125.2, 117.9),
    ("ours", 0.25, "step"): (106.1, 100.0), ("ours", 0.5, "step"): (102.8, 98.0),
    ("ours", 0.25, "sequence"): (106.3, 100.7), ("ours", 0.5, "sequence"): (103.2, 96.8),
}
OMITTED["semeniuta-t2 forward-dropout rows"] = (
    "Table 2's lower part uses forward dropout 0.2 on inputs and 0.5 on outputs; the zaremba "
    "scheme has one rate for both sites")
OMITTED["semeniuta-t2-gal-*-step"] = OMITTED["semeniuta-t1-*-gal-step"]

for (family, rate, sampling), (valid, test) in _T2.items():
    if family == "none":
        name, scheme, row = "semeniuta-t2-baseline", "none", "no dropout"
    else:
        name = f"semeniuta-t2-{family}-{rate:g}-{sampling}"
        scheme = ("gal:p=0,p_recurrent={r}" if family == "gal" else
                  "moon:p={r},sampling={s}" if family == "moon" else
                  "semeniuta:p={r},sampling={s}").format(r=rate, s=sampling)
        row = f"{_T1_ROW[family]}, rate {rate:g}, {sampling} sampling, no forward dropout"
    _add(Preset(
        name, SEMENIUTA, "Table 2", row, "perplexity", {"valid": valid, "test": test},
        dict(task="ptb-word", task_params={"batching": "stream", "bptt": 35},
                    hidden_size=256, init_range=0.05, scheme=scheme, optimizer="sgd", lr=1.0,
                    clip=10.0, batch_size=32, schedule="plateau", lr_decay=1 / 1.5, epochs=40),
        notes="Section 4.2 setup; the number of epochs is not stated in the paper (40 here, "
              "with the divide-by-1.5 schedule)."),
        {"hidden_size": 64, "epochs": 1, "max_steps": 300})

# --- Zaremba et al. 2014, Section 4.1: small / medium / large word-level PTB -------------------
# The numbers of Zaremba's Table 1 are an image in the provided text; the medium and large
# values are those Gal & Ghahramani 2016 Table 1 lists for "Zaremba et al. [4]".
_ZAREMBA = {
    "small": dict(config=dict(num_layers=2, hidden_size=200, init_range=0.1, scheme="none",
                              epochs=13, schedule="decay", lr_decay=1 / 2, decay_start=4,
                              clip=None, task_params={"batching": "stream", "bptt": 20}),
                  reported={}, row="non-regularized LSTM, 2 x 200",
                  notes="Section 4.1: 13 epochs, lr 1 for 4 epochs then halved each epoch, "
                        "minibatch 20, unrolled 20 steps, init U[-0.1, 0.1]. No clipping "
                        "threshold is stated for this model (none used). Table 1 is an image "
                        "in the provided text: no reported number."),
    "medium": dict(config=dict(num_layers=2, hidden_size=650, init_range=0.05,
                               scheme="zaremba:p=0.5", epochs=39, schedule="decay",
                               lr_decay=1 / 1.2, decay_start=6, clip=5.0,
                               task_params={"batching": "stream", "bptt": 35}),
                   reported={"valid": 86.2, "test": 82.7}, row="medium regularized LSTM, 2 x 650",
                   notes="Section 4.1: 50% dropout on non-recurrent connections, 39 epochs, lr 1 "
                         "divided by 1.2 each epoch after epoch 6, clip 5, minibatch 20, 35 steps. "
                         "Numbers from Gal & Ghahramani 2016 Table 1, row 'Zaremba et al. [4]'."),
    "large": dict(config=dict(num_layers=2, hidden_size=1500, init_range=0.04,
                              scheme="zaremba:p=0.65", epochs=55, schedule="decay",
                              lr_decay=1 / 1.15, decay_start=14, clip=10.0,
                              task_params={"batching": "stream", "bptt": 35}),
                  reported={"valid": 82.2, "test": 78.4}, row="large regularized LSTM, 2 x 1500",
                  notes="Section 4.1: 65% dropout, 55 epochs, lr 1 divided by 1.15 each epoch "
                        "after epoch 14, clip 10, minibatch 20, 35 steps. Numbers from Gal & "
                        "Ghahramani 2016 Table 1, row 'Zaremba et al. [4]'."),
}
for size, z in _ZAREMBA.items():
    c = dict(z["config"])
    _add(Preset(f"zaremba-{size}", ZAREMBA, "Table 1" if size != "small" else "Section 4.1",
                z["row"], "perplexity", z["reported"],
                dict(task="ptb-word", task_params=c.pop("task_params"), optimizer="sgd",
                            lr=1.0, batch_size=20, **c),
                notes=z["notes"]),
         {"hidden_size": 64, "epochs": 1, "max_steps": 300})

# --- Gal & Ghahramani 2016, Section 5.1, Table 1: variational LSTM on word-level PTB ----------
# Zaremba's medium / large setups with the variational scheme; dropout probabilities from
# footnote 3: large 0.3 (embeddings and recurrent layers) and 0.5 (inputs and outputs);
# medium 0.2 and 0.35. MC dropout averages 1000 samples. Table 1 (valid, test, test MC):
_GAL = {
    ("medium", True): (81.8, 79.7, 79.0), ("medium", False): (81.9, 79.7, 78.6),
    ("large", True): (77.3, 75.0, 74.1), ("large", False): (77.9, 75.2, 73.4),
}
_GAL_P = {"medium": (0.35, 0.2), "large": (0.5, 0.3)}
for (size, tied), (valid, test, test_mc) in _GAL.items():
    z = dict(_ZAREMBA[size]["config"])
    p_io, p_rec = _GAL_P[size]
    z["scheme"] = f"gal:p={p_io},p_recurrent={p_rec},p_embedding={p_rec},tied={str(tied).lower()}"
    kind = "tied" if tied else "untied"
    _add(Preset(f"gal-{size}-{kind}", GAL, "Table 1", f"Variational ({kind} weights), {size} LSTM",
                "perplexity", {"valid": valid, "test": test, "test_mc": test_mc},
                dict(task="ptb-word", task_params=z.pop("task_params"), optimizer="sgd",
                            lr=1.0, batch_size=20, eval_modes=("deterministic", "mc"),
                            mc_samples=1000, **z),
                notes="Section 5.1: Zaremba's setup with the variational scheme; weight decay "
                      "was tuned but its value is not stated (0 here). MC test uses 1000 samples."),
         {"hidden_size": 64, "epochs": 1, "max_steps": 300, "mc_samples": 10})

# --- Krueger et al. 2016, Section 4.1, Table 1: permuted sequential MNIST ----------------------
# RMSProp (decay rate 0.5), lr 0.001, clip 1.0, 150 epochs, recurrent dropout and zoneout 0.15.
_K1 = {"lstm": ("none", "LSTM", 0.092, 0.102),
       "recurrent-dropout": ("semeniuta:p=0.15,sampling=step", "Recurrent dropout", 0.083, 0.075),
       "zoneout": ("zoneout:p_cell=0.15,p_hidden=0.15", "Zoneout", 0.063, 0.069)}
for key, (scheme, row, valid, test) in _K1.items():
    _add(Preset(f"krueger-t1-{key}", KRUEGER, "Table 1", f"{row}, permuted sequential MNIST",
                "error", {"valid": valid, "test": test},
                dict(task="permuted-mnist", task_params={"source": "mnist"},
                            hidden_size=100, scheme=scheme, optimizer="rmsprop", rmsprop_alpha=0.5,
                            lr=0.001, clip=1.0, epochs=150, batch_size=32),
                notes="Section 4.1. The hidden size and batch size are not stated in the text "
                      "(100 and 32 here). The paper shares one zoneout mask between cells and "
                      "hidden states; the zoneout scheme samples them independently."),
         {"hidden_size": 32, "epochs": 1, "max_steps": 200,
          "task_params": {"source": "fashion-mnist"}})

# --- Krueger et al. 2016, Section 4.2.1, Table 2: character-level PTB -------------------------
# One layer of 1000 units, non-overlapping sequences of 100, batches of 32, Adam lr 0.002,
# clipping 1. Table 2 (valid bpc; test where given):
_K2 = {"zc0.5-zh0.5": (0.5, 0.5, {"valid": 1.66}),
       "zc0.05-zh0.05": (0.05, 0.05, {"valid": 1.417}),
       "zc0.5": (0.5, 0.0, {"valid": 1.464}),
       "zc0.5-zh0.05": (0.5, 0.05, {"valid": 1.362, "test": 1.297}),
       "zc0.05": (0.05, 0.0, {"valid": 1.53}),
       "zh0.5": (0.0, 0.5, {"valid": 1.582}),
       "zh0.05": (0.0, 0.05, {"valid": 1.431}),
       "lstm": (0.0, 0.0, {"valid": 1.664, "test": 1.398})}
OMITTED["krueger-t2-recurrent-dropout"] = ("Table 2 does not say which of the searched rates "
                                           "(0.05, 0.2, 0.5, 0.7) gave the reported 1.481 / 1.382")
for key, (zc, zh, reported) in _K2.items():
    scheme = "none" if zc == zh == 0 else f"zoneout:p_cell={zc},p_hidden={zh}"
    row = "LSTM" if scheme == "none" else f"zoneout z_c={zc:g}, z_h={zh:g}"
    _add(Preset(f"krueger-t2-{key}", KRUEGER, "Table 2", f"{row}, character-level PTB", "bpc",
                reported,
                dict(task="ptb-char", task_params={"batching": "slices", "bptt": 100},
                            hidden_size=1000, scheme=scheme, optimizer="adam", lr=0.002, clip=1.0,
                            batch_size=32, epochs=50),
                notes="Section 4.2.1. The number of epochs and the embedding size are not "
                      "stated in the text (50 epochs, embedding = hidden size here)."),
         {"hidden_size": 64, "epochs": 1, "max_steps": 300})

# --- Krueger et al. 2016, Section 4.2.2, Table 3: word-level PTB ------------------------------
# One layer of 256 units, init U[-0.05, 0.05], non-overlapping sequences of 35, batches of 32,
# SGD with momentum 0.99, clipping 10, lr 1 divided by 1.5 after an epoch without improvement.
_K3 = {"zoneout-h0.25": ("zoneout:p_cell=0,p_hidden=0.25", "Zoneout (p_states = 0.25)", 115.2),
       "output-zoneout-0.25": ("output-zoneout:p=0.25",
                               "Recurrent dropout with output zoneout (p = 0.25)", 115.7),
       "zoneout-c0.05-h0.05": ("zoneout:p_cell=0.05,p_hidden=0.05",
                               "Zoneout (p_cells = p_states = 0.05)", 117.3),
       "recurrent-dropout-0.5": ("semeniuta:p=0.5,sampling=step", "Recurrent dropout (p = 0.5)", 119.9),
       "zoneout-c0.5": ("zoneout:p_cell=0.5,p_hidden=0", "Zoneout (p_cells = 0.5)", 143.6),
       "baseline": ("none", "Baseline (no regularization)", 145.4)}
OMITTED["krueger-t3 stochastic depth, norm-stabilizer, weight noise"] = "no such scheme"
for key, (scheme, row, valid) in _K3.items():
    _add(Preset(f"krueger-t3-{key}", KRUEGER, "Table 3", f"{row}, word-level PTB", "perplexity",
                {"valid": valid},
                dict(task="ptb-word", task_params={"batching": "slices", "bptt": 35},
                            hidden_size=256, init_range=0.05, scheme=scheme, optimizer="momentum",
                            momentum=0.99, lr=1.0, clip=10.0, batch_size=32, schedule="plateau",
                            lr_decay=1 / 1.5, epochs=40),
                notes="Section 4.2.2. The number of epochs is not stated in the text (40 here)."),
         {"hidden_size": 64, "epochs": 1, "max_steps": 300})


def get_preset(name: str) -> Preset:
    return PRESETS.get(name)


def list_presets() -> list[str]:
    return PRESETS.list()


#: task parameters that do not change which experiment a run is
_SIZE_PARAMS = ("train_size", "valid_size", "test_size", "seed")


def _drop_scaling(spec: str) -> str:
    return re.sub(r",?scaling=(inverted|expectation)", "", spec).replace(":,", ":")


@lru_cache(maxsize=None)
def scheme_key(spec: str) -> str:
    """A scheme's full text form without its scaling convention (which the papers' numbers
    do not depend on: it is an implementation choice)."""
    return _drop_scaling(parse_scheme(spec).spec)


def _task_key(params: dict) -> dict:
    return {k: v for k, v in params.items() if k not in _SIZE_PARAMS}


def match_preset(config: TrainConfig, command: Sequence[str] = ()) -> Preset | None:
    """The preset a run reproduces: one named on its command line, else one that trains the
    same task with the same task setting (e.g. ``length``) and the same scheme. Sizes of the
    data splits, the model and the optimiser may differ (CPU-sized reproductions), and so
    may the scaling convention. Full-size presets are preferred over their ``-cpu``
    variants."""
    names = PRESETS.list()
    for token in command:
        if isinstance(token, str) and token in names:
            return PRESETS.get(token)
    key = _drop_scaling(config.net.scheme.spec)  # type: ignore[union-attr]
    params = _task_key(config.task_params)
    found = []
    for name in names:
        p = PRESETS.get(name)
        s = p.settings
        if s["task"] != config.task or _task_key(s.get("task_params", {})) != params:
            continue
        if scheme_key(s.get("scheme", "none")) == key:
            found.append(p)
    found.sort(key=lambda p: (p.cpu_of is not None, p.name))
    return found[0] if found else None
