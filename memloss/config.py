"""``TrainConfig``: everything that defines a training run, as one frozen dataclass.

It is saved as ``config.json["train"]`` in every run directory and rebuilt from there by
``--resume`` and :func:`memloss.rundir.load_run`. ``--set key=value`` overrides go through
:func:`apply_overrides` (``task.NAME=value`` sets a task parameter).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Iterable

from memloss.models.net import INFERENCE_MODES

__all__ = ["TrainConfig", "OPTIMIZERS", "SCHEDULES", "apply_overrides", "parse_value",
           "RESUME_OVERRIDABLE"]

OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")
#: constant; plateau = lr *= lr_decay after an evaluation that did not improve validation;
#: decay = lr *= lr_decay after every epoch from epoch ``decay_start`` on
SCHEDULES = ("constant", "plateau", "decay")
#: fields that may change when a run is resumed (how long and how it is evaluated)
RESUME_OVERRIDABLE = ("epochs", "max_steps", "patience", "eval_modes", "mc_samples", "progress",
                      "device", "eval_batch_size")


@dataclass(frozen=True)
class TrainConfig:
    """One training run: task, net, optimiser, schedule, length, evaluation, seed.

    Net fields (``cell`` ... ``path``) are those of :class:`memloss.models.NetConfig`; the input and
    output sizes come from the task. ``optimizer``: ``sgd``, ``momentum`` (SGD with
    ``momentum``), ``adam`` or ``rmsprop`` (smoothing ``rmsprop_alpha``). ``clip``: max-norm
    gradient clipping (None = off). ``schedule``: see :data:`SCHEDULES`; ``lr_decay`` is the
    multiplier (e.g. ``1/1.5`` to divide by 1.5). Training stops after ``epochs`` epochs or
    ``max_steps`` steps (whichever comes first; give at least one), or when validation has
    not improved for ``patience`` evaluations. Validation runs at every epoch end and every
    ``eval_every`` steps under ``valid_mode``; the test split is scored at the end under each
    of ``eval_modes`` (``mc`` with ``mc_samples`` samples), with the best-validation weights
    when ``restore_best``. ``hooks`` names callbacks registered in
    :data:`memloss.train.CALLBACKS`. ``progress``: tqdm bars (None = only on a terminal).
    """

    task: str
    task_params: dict = field(default_factory=dict)
    # net
    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    scheme: str = "none"
    embedding_dim: int | None = None
    init_range: float | None = None
    forget_bias: float | None = None
    nonlinearity: str = "tanh"
    path: str = "auto"
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

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or not self.task:
            raise ValueError(f"TrainConfig.task must be a task name, got {self.task!r}")
        if not isinstance(self.task_params, dict):
            raise ValueError(f"TrainConfig.task_params must be a dict, got {self.task_params!r}")
        for name in ("eval_modes", "hooks"):
            v = getattr(self, name)
            if isinstance(v, str):
                v = (v,)
            object.__setattr__(self, name, tuple(v))
        self._check_choice("optimizer", OPTIMIZERS)
        self._check_choice("schedule", SCHEDULES)
        self._check_choice("valid_mode", INFERENCE_MODES)
        self._check_choice("device", None)
        for m in self.eval_modes:
            if m not in INFERENCE_MODES:
                raise ValueError(f"TrainConfig.eval_modes: unknown mode {m!r}; valid: "
                                 f"{', '.join(INFERENCE_MODES)}")
        for name in ("hidden_size", "num_layers", "batch_size", "eval_batch_size", "mc_samples"):
            self._check_int(name, minimum=1)
        for name in ("epochs", "max_steps", "eval_every", "patience", "embedding_dim"):
            if getattr(self, name) is not None:
                self._check_int(name, minimum=1)
        self._check_int("decay_start", minimum=0)
        self._check_int("seed", minimum=0)
        if self.epochs is None and self.max_steps is None:
            raise ValueError("TrainConfig needs epochs or max_steps (or both) to know when to stop")
        self._check_float("lr", low=0.0, low_open=True)
        self._check_float("weight_decay", low=0.0)
        self._check_float("min_lr", low=0.0)
        self._check_float("momentum", low=0.0, high=1.0)
        self._check_float("rmsprop_alpha", low=0.0, high=1.0)
        self._check_float("lr_decay", low=0.0, high=1.0, low_open=True)
        for name in ("clip", "init_range"):
            if getattr(self, name) is not None:
                self._check_float(name, low=0.0, low_open=True)
        if self.schedule != "constant" and self.lr_decay == 1.0:
            raise ValueError(f"schedule={self.schedule!r} needs lr_decay < 1 (the multiplier, "
                             "e.g. 0.6667 to divide the learning rate by 1.5)")
        for name in ("restore_best",):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"TrainConfig.{name} must be true or false")

    def _check_choice(self, name: str, choices: tuple[str, ...] | None) -> None:
        v = getattr(self, name)
        if choices is None:  # device
            if not isinstance(v, str) or not (v in ("cpu", "cuda", "auto") or v.startswith("cuda:")):
                raise ValueError(f"TrainConfig.device must be cpu, cuda, cuda:N or auto, got {v!r}")
            return
        if v not in choices:
            raise ValueError(f"TrainConfig.{name}={v!r} is not one of {', '.join(choices)}")

    def _check_int(self, name: str, minimum: int) -> None:
        v = getattr(self, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ValueError(f"TrainConfig.{name} must be an integer >= {minimum}, got {v!r}")

    def _check_float(self, name: str, low: float, high: float | None = None,
                     low_open: bool = False) -> None:
        v = getattr(self, name)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ok = ok and (v > low if low_open else v >= low) and (high is None or v <= high)
        if not ok:
            rng = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}]"
            raise ValueError(f"TrainConfig.{name} must be a number in {rng}, got {v!r}")

    # --- conversions ---------------------------------------------------------------------
    def net_fields(self) -> dict:
        """The NetConfig fields this config sets (the task adds input/output sizes)."""
        return {k: getattr(self, k) for k in ("cell", "hidden_size", "num_layers", "scheme",
                                              "embedding_dim", "init_range", "forget_bias", "nonlinearity",
                                              "path")}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eval_modes"] = list(self.eval_modes)
        d["hooks"] = list(self.hooks)
        return d

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if not isinstance(d, dict):
            raise ValueError(f"a TrainConfig is a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown TrainConfig option {unknown[0]!r}; valid: "
                             f"{', '.join(cls.field_names())}")
        return cls(**d)

    def replace(self, **changes: Any) -> "TrainConfig":
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ValueError(f"unknown TrainConfig option {unknown[0]!r}; valid: "
                             f"{', '.join(self.field_names())}")
        return replace(self, **changes)


_FIELD_TYPES = {f.name: str(f.type) for f in fields(TrainConfig)}


def parse_value(raw: str) -> Any:
    """A ``--set`` value: JSON when it parses (numbers, true/false, null, lists), else text."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _coerce(key: str, raw: str) -> Any:
    t = _FIELD_TYPES[key]
    if "None" in t and raw.strip().lower() in ("none", "null", ""):
        return None
    if t.startswith("tuple"):
        v = parse_value(raw)
        return tuple(v) if isinstance(v, list) else tuple(s.strip() for s in raw.split(",") if s.strip())
    if t.startswith("dict"):
        v = parse_value(raw)
        if not isinstance(v, dict):
            raise ValueError(f"--set {key}= needs a JSON object, got {raw!r}")
        return v
    if t.startswith("bool"):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--set {key}= must be true or false, got {raw!r}")
    if t.startswith("int"):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"--set {key}= must be an integer, got {raw!r}") from None
    if t.startswith("float"):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"--set {key}= must be a number, got {raw!r}") from None
    return raw


def apply_overrides(config: TrainConfig, sets: Iterable[str]) -> TrainConfig:
    """Apply ``key=value`` strings: TrainConfig fields, or ``task.NAME=value`` task params."""
    changes: dict[str, Any] = {}
    task_params = dict(config.task_params)
    for item in sets:
        if "=" not in item:
            raise ValueError(f"--set takes key=value, got {item!r} (e.g. --set lr=0.5 or "
                             "--set task.length=30)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key.startswith("task."):
            name = key[len("task."):]
            if not name:
                raise ValueError(f"--set {item!r}: name the task parameter, e.g. task.length=30")
            task_params[name] = parse_value(raw)
        elif key in _FIELD_TYPES and key not in ("task", "task_params"):
            changes[key] = _coerce(key, raw)
        elif key == "task":
            changes["task"] = raw
        else:
            raise ValueError(f"unknown option {key!r} in --set; valid: task.<param>, "
                             f"{', '.join(k for k in _FIELD_TYPES if k != 'task_params')}")
    changes["task_params"] = task_params
    return config.replace(**changes)

