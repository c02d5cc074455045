"""``TrainConfig``: everything that defines a training run, as one frozen dataclass.

It is saved as ``config.json["train"]`` in every run directory and rebuilt from there by
``--resume`` and :func:`memloss.runs.load_run`. The net is a nested
:class:`~memloss.models.NetConfig` (``net``) whose data sizes the task fills in.
``--set key=value`` overrides go through :func:`apply_overrides`: ``task.NAME=value`` sets
a task parameter, ``net.NAME=value`` (or just ``NAME=value``, e.g. ``hidden_size=128``) a
net field.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterable, Mapping

from memloss.core import bounds, validate
from memloss.models import DATA_FIELDS, INFERENCE_MODES, NetConfig

__all__ = ["TrainConfig", "OPTIMIZERS", "SCHEDULES", "apply_overrides", "parse_value",
           "RESUME_OVERRIDABLE", "NET_FIELDS", "changed_fields"]

OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")
#: constant; plateau = lr *= lr_decay after an evaluation that did not improve validation;
#: decay = lr *= lr_decay after every epoch from epoch ``decay_start`` on
SCHEDULES = ("constant", "plateau", "decay")
#: fields that may change when a run is resumed: how long and how it is evaluated, and, to
#: recover from a NaN stop, the learning rate, clipping and schedule (the change is recorded
#: in config.json["resumed"])
RESUME_OVERRIDABLE = ("epochs", "max_steps", "patience", "eval_modes", "mc_samples", "progress",
                      "device", "eval_batch_size", "threads", "hooks", "lr", "clip", "schedule",
                      "lr_decay", "decay_start", "min_lr")
#: NetConfig fields only an import sets (``--set`` refuses them)
IMPORT_ONLY = ("head_words",)
#: the NetConfig fields a TrainConfig sets (the task sets the data sizes)
NET_FIELDS = tuple(n for n in NetConfig.field_names() if n not in DATA_FIELDS)


@dataclass(frozen=True)
class TrainConfig:
    """One training run: task, net, optimiser, schedule, length, evaluation, seed.

    ``net``: a :class:`~memloss.models.NetConfig` without data sizes (or a dict of its
    fields); the task adds input and output sizes. ``optimizer``: ``sgd``, ``momentum``
    (SGD with ``momentum``), ``adam`` or ``rmsprop`` (smoothing ``rmsprop_alpha``).
    ``clip``: max-norm gradient clipping (None = off). ``schedule``: see :data:`SCHEDULES`;
    ``lr_decay`` is the multiplier (e.g. ``1/1.5`` to divide by 1.5). Training stops after
    ``epochs`` epochs or ``max_steps`` steps (whichever comes first; give at least one), or
    when validation has not improved for ``patience`` evaluations. Validation runs at every
    epoch end and every ``eval_every`` steps under ``valid_mode``; the test split is scored
    at the end under each of ``eval_modes`` (``mc`` with ``mc_samples`` samples), with the
    best-validation weights when ``restore_best``. ``hooks`` names callbacks registered in
    :data:`memloss.training.CALLBACKS`. ``progress``: tqdm bars (None = only on a terminal).
    ``threads``: torch's intra-op thread count while the run trains (None = leave it as it
    is); ``memloss sweep --jobs N`` gives each of N parallel runs its share of the cores.
    """

    task: str
    task_params: dict = field(default_factory=dict)
    net: NetConfig = field(default_factory=NetConfig)
    # optimisation
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    rmsprop_alpha: float = 0.99
    weight_decay: float = 0.0
    clip: float | None = None
    schedule: str = "constant"
    lr_decay: float = 1.0
    decay_start: int = 0
    min_lr: float = 0.0
    # length and evaluation
    epochs: int | None = 1
    max_steps: int | None = None
    batch_size: int = 32
    eval_batch_size: int = 256
    eval_every: int | None = None
    patience: int | None = None
    valid_mode: str = "deterministic"
    eval_modes: tuple[str, ...] = ("deterministic",)
    mc_samples: int = 10
    restore_best: bool = True
    hooks: tuple[str, ...] = ()
    seed: int = 0
    device: str = "cpu"
    progress: bool | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        o = "TrainConfig"
        if not isinstance(self.task, str) or not self.task:
            raise ValueError(f"TrainConfig.task must be a task name, got {self.task!r}")
        if not isinstance(self.task_params, dict):
            raise ValueError(f"TrainConfig.task_params must be a dict, got {self.task_params!r}")
        if isinstance(self.net, Mapping):
            object.__setattr__(self, "net", NetConfig.from_dict(self.net))
        if not isinstance(self.net, NetConfig):
            raise ValueError(f"TrainConfig.net must be a NetConfig, got {type(self.net).__name__}")
        fixed = [k for k in DATA_FIELDS if getattr(self.net, k) is not None]
        if fixed:
            raise ValueError(f"TrainConfig.net must not set {fixed}: the task fixes them")
        for name in ("eval_modes", "hooks"):
            v = getattr(self, name)
            if isinstance(v, str):
                v = (v,)
            if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
                raise ValueError(f"TrainConfig.{name} must be a list of names, got "
                                 f"{validate.shown(v)}")
            object.__setattr__(self, name, tuple(v))
        validate.choice(o, "optimizer", self.optimizer, OPTIMIZERS)
        validate.choice(o, "schedule", self.schedule, SCHEDULES)
        validate.choice(o, "valid_mode", self.valid_mode, INFERENCE_MODES)
        if not isinstance(self.device, str) or not re.fullmatch(r"cpu|cuda|auto|cuda:[0-9]{1,3}",
                                                                self.device):
            raise ValueError(f"TrainConfig.device must be cpu, cuda, cuda:N or auto, got "
                             f"{validate.shown(self.device)}")
        for m in self.eval_modes:
            if m not in INFERENCE_MODES:
                raise ValueError(f"TrainConfig.eval_modes: unknown mode {validate.shown(m)}; valid: "
                                 f"{', '.join(INFERENCE_MODES)}")
        for name in ("batch_size", "eval_batch_size"):
            validate.integer(o, name, getattr(self, name))
        validate.integer(o, "mc_samples", self.mc_samples, maximum=bounds.MAX_SAMPLES)
        for name in ("epochs", "max_steps", "eval_every", "patience", "threads"):
            validate.optional(validate.integer, o, name, getattr(self, name))
        validate.integer(o, "decay_start", self.decay_start, minimum=0)
        validate.integer(o, "seed", self.seed, minimum=0, maximum=validate.MAX_SEED)
        if self.epochs is None and self.max_steps is None:
            raise ValueError("TrainConfig needs epochs or max_steps (or both) to know when to stop")
        validate.number(o, "lr", self.lr, 0.0, low_open=True)
        validate.number(o, "weight_decay", self.weight_decay, 0.0)
        validate.number(o, "min_lr", self.min_lr, 0.0)
        if self.min_lr > self.lr:
            raise ValueError(f"TrainConfig.min_lr={self.min_lr:g} is above lr={self.lr:g}: the "
                             "schedule would raise the learning rate; set min_lr <= lr")
        validate.number(o, "momentum", self.momentum, 0.0, 1.0)
        validate.number(o, "rmsprop_alpha", self.rmsprop_alpha, 0.0, 1.0)
        validate.number(o, "lr_decay", self.lr_decay, 0.0, 1.0, low_open=True)
        validate.optional(validate.number, o, "clip", self.clip, 0.0, low_open=True)
        if self.schedule != "constant" and self.lr_decay == 1.0:
            raise ValueError(f"schedule={self.schedule!r} needs lr_decay < 1 (the multiplier, "
                             "e.g. 0.6667 to divide the learning rate by 1.5)")
        validate.flag(o, "restore_best", self.restore_best)
        validate.optional(validate.flag, o, "progress", self.progress)

    # --- conversions ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["task_params"] = dict(self.task_params)
        d["net"] = {k: v for k, v in self.net.to_dict().items() if k not in DATA_FIELDS}
        d["eval_modes"] = list(self.eval_modes)
        d["hooks"] = list(self.hooks)
        return d

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Rebuild from :meth:`to_dict`; run directories of older versions, whose net fields
        sit at the top level, load too."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a TrainConfig is a JSON object, got {type(d).__name__}")
        d = dict(d)
        net = dict(d.pop("net", None) or {})
        for k in NET_FIELDS:
            if k in d:
                net[k] = d.pop(k)
        unknown = sorted(set(d) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown TrainConfig option {unknown[0]!r}; valid: "
                             f"{', '.join(_option_names())}")
        return cls(**d, net=net)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes``; net fields may be given by name (``hidden_size=128``)."""
        net_changes = {k: changes.pop(k) for k in list(changes) if k in NET_FIELDS}
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ValueError(f"unknown TrainConfig option {unknown[0]!r}; valid: "
                             f"{', '.join(_option_names())}")
        if net_changes:
            base = changes.get("net", self.net)
            if isinstance(base, Mapping):
                base = NetConfig.from_dict(base)
            changes["net"] = replace(base, **net_changes)
        return replace(self, **changes)


def changed_fields(new: TrainConfig, old: TrainConfig) -> list[str]:
    """The options that differ between two configs (net fields by their plain names)."""
    a, b = new.to_dict(), old.to_dict()
    out = [k for k in a if k != "net" and a[k] != b.get(k)]
    out += [k for k in a["net"] if a["net"][k] != b["net"].get(k)]
    return sorted(out)


def _option_names() -> list[str]:
    """Every option name a config or ``--set`` takes (net fields by their plain names)."""
    return ([n for n in TrainConfig.field_names() if n != "net"]
            + [n for n in NET_FIELDS if n not in IMPORT_ONLY])


_FIELD_TYPES = {f.name: str(f.type) for f in fields(TrainConfig) if f.name != "net"}
_FIELD_TYPES.update({f.name: str(f.type) for f in fields(NetConfig) if f.name in NET_FIELDS})
_FIELD_TYPES["scheme"] = "str"


def parse_value(raw: str) -> Any:
    """A ``--set`` value: JSON when it parses (numbers, true/false, null, lists), else text."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


#: the only spellings --set accepts for numbers (Python's int() and float() also take
#: "1_000", " 5 " and "nan", which would change a value silently or mean nothing)
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z0-9_.:+=-]+")


def _coerce(key: str, raw: str) -> Any:
    t = _FIELD_TYPES[key]
    bad = f"--set {key}={validate.shown(raw)}"
    if "None" in t and raw.lower() in ("none", "null", ""):
        return None
    if t.startswith("tuple"):
        v = parse_value(raw)
        items = v if isinstance(v, list) else raw.split(",")
        if not all(isinstance(x, str) and _NAME.fullmatch(x) for x in items):
            raise ValueError(f"{bad}: give names separated by commas, e.g. "
                             f"{key}=deterministic,mc")
        return tuple(items)
    if t.startswith("bool"):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{bad}: must be true or false")
    if t.startswith("int"):
        if not _INT.fullmatch(raw):
            raise ValueError(f"{bad}: must be an integer such as 100")
        return int(raw)
    if t.startswith("float"):
        if not _FLOAT.fullmatch(raw):
            raise ValueError(f"{bad}: must be a number such as 0.5 or 1e-3")
        return float(raw)
    return raw


def apply_overrides(config: TrainConfig, sets: Iterable[str]) -> TrainConfig:
    """Apply ``key=value`` strings: TrainConfig fields, ``task.NAME=value`` task parameters,
    and net fields (``hidden_size=128`` or ``net.hidden_size=128``). A key given twice is
    an error (the second would silently win)."""
    changes: dict[str, Any] = {}
    task_params = dict(config.task_params)
    seen: set[str] = set()
    for item in sets:
        if "=" not in item:
            raise ValueError(f"--set takes key=value, got {validate.shown(item)} (e.g. --set "
                             "lr=0.5 or --set task.length=30)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key.startswith("net.") and key[len("net."):] in NET_FIELDS:
            key = key[len("net."):]
        if key in seen:
            raise ValueError(f"--set {validate.shown(key)} is given twice; give each option once")
        seen.add(key)
        if key.startswith("task."):
            name = key[len("task."):]
            if not name:
                raise ValueError(f"--set {validate.shown(item)}: name the task parameter, e.g. "
                                 "task.length=30")
            task_params[name] = parse_value(raw)
            continue
        if key in IMPORT_ONLY:
            raise ValueError(f"--set {key}: only `memloss import --fold-unk` sets it (the folded "
                             "output head of an imported model); leave it out")
        if key in _FIELD_TYPES and key != "task_params":
            changes[key] = _coerce(key, raw)
        elif key == "task":
            changes["task"] = raw
        else:
            raise ValueError(f"unknown option {validate.shown(key)} in --set; valid: task.<param>, "
                             f"{', '.join(k for k in _option_names() if k != 'task_params')}")
    changes["task_params"] = task_params
    return config.replace(**changes)
