"""JSON Schemas of the run-directory files, and one check that names the file and the field.

Every run file is validated when it is read (:mod:`memloss.core.runfiles`), so a file that is
valid JSON but has the wrong structure (a hand edit, another program's output) fails with one
line such as ``RUN/final.json: field test.deterministic.accuracy: 'x' is not of type
'number'`` instead of a ``KeyError`` deep inside a reader. The contents of
``config.json["train"]`` and ``["net"]`` are checked further by the application's config
classes (:func:`memloss.runs.read_config`).
"""
from __future__ import annotations

import os
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match

from .validate import shown

__all__ = ["SCHEMAS", "schema_problem", "CHECKPOINT_DIR_PATTERN"]

#: checkpoint folders are ``checkpoint-<step>-<8 hex digits>``: a name, never a path
CHECKPOINT_DIR_PATTERN = r"^checkpoint-[0-9]{9,}-[0-9a-f]{8}$"

_COUNT = {"type": "integer", "minimum": 0}
_OPT_COUNT = {"type": ["integer", "null"], "minimum": 0}
_NUMBER = {"type": "number"}
_OPT_NUMBER = {"type": ["number", "null"]}
_SCORES = {"type": "object", "additionalProperties": {
    "type": "object", "additionalProperties": _NUMBER}}
_FILE = {"type": "object", "required": ["sha256", "bytes"], "additionalProperties": False,
         "properties": {"sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        "bytes": _COUNT}}

#: the trainer's loop counters (in trainer_state.pt and the checkpoint manifest)
LOOP = {
    "type": "object",
    "required": ["epoch", "step", "batch_in_epoch", "lr", "best", "best_step", "bad_evals",
                 "loss_sum", "loss_count", "train_sums"],
    "properties": {
        "epoch": _COUNT, "step": _COUNT, "batch_in_epoch": _COUNT,
        "lr": {"type": "number", "minimum": 0}, "step_lr": _NUMBER,
        "best": _OPT_NUMBER, "best_step": _OPT_COUNT, "bad_evals": _COUNT,
        "stopped": {"type": ["string", "null"]}, "loss_sum": _NUMBER, "loss_count": _COUNT,
        "train_sums": {"type": "object", "additionalProperties": _NUMBER},
    },
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "config": {
        "type": "object",
        "required": ["train", "net"],
        "properties": {
            "train": {"type": "object"}, "net": {"type": "object"},
            "path": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "task_info": {"type": "object"},
            "command": {"type": "array", "items": {"type": "string"}},
            "versions": {"type": "object"},
            "seed": _COUNT,
            "created": {"type": "string"},
            "resumed": {"type": "array", "items": {"type": "object"}},
            "info": {"type": "object", "properties": {"preset": {
                "type": "object",
                "properties": {"paper": {"type": "string"}, "table": {"type": "string"},
                               "metric": {"type": "string"},
                               "reported": {"type": "object", "additionalProperties": _NUMBER},
                               "bounds": {"type": "object",
                                          "additionalProperties": {"type": "string"}}}}}},
        },
    },
    "final": {
        "type": "object",
        "properties": {
            "weights": {"enum": ["best", "last"]},
            "weights_step": _OPT_COUNT, "step": _COUNT, "epoch": _COUNT,
            "stopped": {"type": ["string", "null"]}, "metric": {"type": "string"},
            "best_valid": _OPT_NUMBER, "train_examples": _COUNT,
            "by_weights": {"type": "object", "additionalProperties": False,
                           "properties": {k: {"type": "object", "required": ["step", "test"],
                                              "properties": {"step": _OPT_COUNT,
                                                             "test": _SCORES}}
                                          for k in ("last", "best")}},
        },
        "patternProperties": {"^(train|valid|test)$": _SCORES,
                              "^(train|valid|test)_weights$": {"enum": ["best", "last"]}},
    },
    "metrics": {
        "type": "object",
        "required": ["epoch", "step"],
        "properties": {"epoch": _COUNT, "batch": _COUNT, "step": _COUNT, "lr": _NUMBER,
                       "seconds": _NUMBER},
    },
    "checkpoint": {
        "type": "object",
        "required": ["format", "step", "epoch", "dir", "files", "metrics_lines", "best_step",
                     "train", "net", "loop"],
        "properties": {
            "format": {"const": 1},
            "step": _COUNT, "epoch": _COUNT,
            "dir": {"type": "string", "pattern": CHECKPOINT_DIR_PATTERN},
            "files": {"type": "object", "required": ["model.safetensors", "trainer_state.pt"],
                      "additionalProperties": False,
                      "properties": {"model.safetensors": _FILE, "trainer_state.pt": _FILE,
                                     "best.safetensors": _FILE}},
            "metrics_lines": _COUNT, "best_step": _OPT_COUNT,
            "train": {"type": "object"}, "net": {"type": "object"},
            "loop": LOOP, "created": {"type": "string"},
        },
    },
    "loop": LOOP,
    "runtime": {
        "type": "object",
        "required": ["time", "steps", "seconds", "cpu_seconds", "kernels"],
        "properties": {
            "time": {"type": "string"}, "host": {"type": "string"},
            "steps": {"type": "array", "items": _COUNT, "minItems": 2, "maxItems": 2},
            "seconds": _NUMBER, "cpu_seconds": _NUMBER,
            "kernels": {"type": "object", "required": ["before", "after"],
                        "properties": {"before": {"type": "object"},
                                       "after": {"type": "object"}}},
        },
    },
}

# JSON Schema counts 1.0 as an integer; a run file's counters must be real integers
_Validator = validators.extend(Draft202012Validator, type_checker=(
    Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool))))
_VALIDATORS = {kind: _Validator(schema) for kind, schema in SCHEMAS.items()}


def schema_problem(kind: str, obj: Any, where: "str | os.PathLike[str]") -> str | None:
    """What is wrong with ``obj`` as a ``kind`` file (one line naming ``where`` and the field),
    or None when it is valid."""
    error = best_match(_VALIDATORS[kind].iter_errors(obj))
    if error is None:
        return None
    field = ".".join(str(p) for p in error.absolute_path)
    at = f"field {field}" if field else "the top level"
    if error.validator == "type":
        what = f"{shown(error.instance)} is not of type {error.validator_value!r}"
    elif error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        what = f"{shown(error.instance)} is not one of {', '.join(map(repr, allowed))}"
    elif error.validator == "required":
        what = error.message.split(" is a required")[0] + " is missing"
    else:
        what = error.message
    if len(what) > 160:
        what = what[:160] + "..."
    return f"{os.fspath(where)}: {at}: {what}"
