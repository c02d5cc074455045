"""The preset machinery shared by the papers' modules: :class:`Preset`, the registry
:data:`PRESETS`, :data:`OMITTED`, :func:`add` (a preset and its ``-cpu`` variant), the
offline stand-ins of the ``-cpu`` variants, and :func:`match_preset`.

A preset keeps its settings as plain values; its :class:`~memloss.config.TrainConfig` is
built (and validated) when first asked for, so importing this module builds no config and
loads no torch (``memloss ls presets`` answers at once).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Sequence

from memloss.core.registry import Registry
from memloss.models import parse_scheme

if TYPE_CHECKING:
    from memloss.config import TrainConfig

__all__ = ["Preset", "PRESETS", "get_preset", "list_presets", "OMITTED", "match_preset",
           "scheme_key", "add", "SEMENIUTA", "ZAREMBA", "GAL", "KRUEGER", "WORD_STANDIN",
           "CHAR_STANDIN", "MNIST_STANDIN", "WORD_CPU", "CHAR_CPU", "MNIST_CPU"]

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
    Which weights the paper scores is ``restore_best`` there: False where the paper reports
    the final network of a fixed schedule, True (the default) where it uses early stopping
    or does not say (:attr:`weights`); final.json records the scores of both.
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
        """The preset's TrainConfig (built on first use; the config module needs torch)."""
        from memloss.config import NET_FIELDS, TrainConfig

        s = dict(self.settings)
        net = {k: s.pop(k) for k in list(s) if k in NET_FIELDS}
        return TrainConfig(**s, net=net)

    @property
    def weights(self) -> str:
        """The weights whose scores the paper reports: ``"last"`` (the final network) or
        ``"best"`` (best validation, early stopping)."""
        return "best" if self.settings.get("restore_best", True) else "last"

    def describe(self) -> str:
        shown = ", ".join(f"{k} {self.bounds.get(k, '')}{v:g}" for k, v in self.reported.items())
        head = f"{self.paper.split(',')[0]} {self.table}: {self.row}"
        if self.cpu_of:
            return f"CPU-sized {head} (paper: {shown or 'no number'})"
        return f"{head} -> {self.metric} {shown or '(no number in the provided text)'}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "paper": self.paper, "table": self.table, "row": self.row,
                "metric": self.metric, "reported": dict(self.reported), "bounds": dict(self.bounds),
                "weights": self.weights, "notes": self.notes, "cpu_of": self.cpu_of, "config": self.config.to_dict()}

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


#: the offline stand-ins a ``-cpu`` variant trains on where the paper's data is not part of
#: memloss: the Shakespeare corpus for word-level PTB (a 2000-word vocabulary keeps the
#: softmax small) and for character-level PTB, Fashion-MNIST for (permuted) MNIST
WORD_STANDIN = {"task": "text-word", "task_params": {"max_vocab": 2000}}
CHAR_STANDIN = {"task": "text-char"}
MNIST_STANDIN = {"task_params": {"source": "fashion-mnist"}}

#: the CPU regime of every word-level language-model table (Semeniuta Table 2, Zaremba, Gal
#: Table 1 and figure 2, Krueger Table 3), chosen by the pilots of docs/fidelity.md so that
#: the unregularized baseline overfits before the end and beats the unigram model: one layer
#: of 256 units on the first 100,000 training words of the stand-in (validated on the first
#: 20,000 validation words after every epoch), batches of 32 x 35, Adam at 0.003 with a
#: constant rate. One layer and one optimiser for every table, so that the papers' rows
#: differ only in their regularization; each table keeps its clipping, initialisation and
#: batching. Which weights are scored stays each preset's (``restore_best``). Gal Table 1's
#: medium rows train a smaller network (1 x 128, 18 epochs): its size finding compares two.
WORD_CPU: dict[str, Any] = {
    **WORD_STANDIN,
    "task_params": {**WORD_STANDIN["task_params"], "train_tokens": 100_000,
                    "valid_tokens": 20_000, "bptt": 35},
    "hidden_size": 256, "num_layers": 1, "batch_size": 32, "optimizer": "adam", "lr": 0.003,
    "schedule": "constant", "epochs": 12, "max_steps": None, "eval_every": None}

#: the CPU regime of every character-level language-model table (Semeniuta Table 3, Krueger
#: Table 2), chosen by the character-level pilots of docs/fidelity.md so that the
#: unregularized baseline overfits before the end and beats the unigram model: one layer of
#: 256 units with 32-dimensional embeddings on the first 50,000 training characters of the
#: stand-in (validated on the first 50,000 validation characters after every epoch), slices
#: of 100 characters in batches of 8 (63 steps per epoch), Adam at 0.006 with a constant
#: rate, 25 epochs. One network and one optimiser for both tables, so that their rows differ
#: only in their regularization; each table keeps its clipping and initialisation. Which
#: weights are scored stays each preset's (``restore_best``).
CHAR_CPU: dict[str, Any] = {
    **CHAR_STANDIN,
    "task_params": {"train_tokens": 50_000, "valid_tokens": 50_000, "bptt": 100},
    "hidden_size": 256, "num_layers": 1, "embedding_dim": 32, "batch_size": 8,
    "optimizer": "adam", "lr": 0.006, "schedule": "constant", "epochs": 25, "max_steps": None,
    "eval_every": None}


#: the CPU regime of permuted sequential MNIST (Krueger Table 1), chosen by the pilots of
#: docs/fidelity.md so that the unregularized baseline overfits before the end (its
#: validation loss passes its minimum and rises) and beats the majority class: Fashion-MNIST
#: in one fixed random pixel order, 16 pixels per step (49 steps instead of 784), the first
#: 1,000 training images (2,000 others held out for validation, the whole test split for
#: test), one layer of 128 units, Adam at 0.003 with a constant rate, 40 epochs. Each row
#: keeps its clipping and batch size. Which weights are scored stays each preset's
#: (``restore_best``).
MNIST_CPU: dict[str, Any] = {
    **MNIST_STANDIN,
    "task_params": {**MNIST_STANDIN["task_params"], "pixels_per_step": 16, "train_size": 1000,
                    "valid_size": 2000},
    "hidden_size": 128, "optimizer": "adam", "lr": 0.003, "schedule": "constant",
    "epochs": 40, "max_steps": None, "eval_every": None}


def add(preset: Preset, cpu: dict[str, Any]) -> None:
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


def get_preset(name: str) -> Preset:
    return PRESETS.get(name)


def list_presets() -> list[str]:
    return PRESETS.list()


#: task parameters that do not change which experiment a run is
_SIZE_PARAMS = ("train_size", "valid_size", "test_size", "seed", "train_tokens",
                "valid_tokens")


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
