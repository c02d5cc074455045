"""Make a run directory of a PyTorch state dict trained elsewhere, for probe, eval and report.

``memloss import STATE_DICT --task NAME [--set task.KEY=VALUE ...] [--scheme S] [--vocab FILE
[--fold-unk]] --out RUN_DIR``
(see docs/diagnostics.md)."""
from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser"]


def _pairs(items: list[str], flag: str, prefix: str = "") -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or (prefix and not key.startswith(prefix)) or key == prefix:
            raise ValueError(f"{flag} takes {prefix.upper() or ''}KEY=VALUE"
                             f"{' (e.g. task.root=data/ptb)' if prefix else ''}, got {item!r}")
        out[key[len(prefix):]] = value
    return out


def _run(args: argparse.Namespace) -> int:
    from memloss.config import parse_value
    from memloss.importing import import_state_dict

    task_params = {k: parse_value(v) for k, v in _pairs(args.set, "--set", "task.").items()}
    parts = _pairs(args.part, "--part")
    out = import_state_dict(args.source, args.out, task=args.task, task_params=task_params,
                            cell=args.cell, hidden_size=args.hidden_size, num_layers=args.layers,
                            scheme=args.scheme, nonlinearity=args.nonlinearity, vocab=args.vocab,
                            parts=parts, fold_unk=args.fold_unk,
                            command=["memloss", *sys.argv[1:]])
    print(f"wrote {out} (memloss eval {out}; memloss probe {out}; memloss report {out} --out R)")
    return 0


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("import", help="make a run directory of a PyTorch state dict trained "
                       "elsewhere", description=__doc__.splitlines()[0])
    p.add_argument("source", help="a .safetensors file or a torch.save(model.state_dict()) file "
                   "(read with torch.load(weights_only=True))")
    p.add_argument("--task", required=True, help="the memloss task to score and probe it on "
                   "(memloss ls tasks)")
    p.add_argument("--set", action="append", default=[], metavar="task.KEY=VALUE",
                   help="a task parameter, e.g. task.root=data/ptb; repeatable")
    p.add_argument("--scheme", default="none",
                   help="the regularization it was trained with, e.g. 'zaremba:p=0.5'")
    p.add_argument("--cell", choices=("lstm", "gru", "rnn"),
                   help="checked against the weights (read from them when left out)")
    p.add_argument("--hidden-size", type=int, help="checked against the weights")
    p.add_argument("--layers", type=int, help="checked against the weights")
    p.add_argument("--nonlinearity", default="tanh", choices=("tanh", "relu"),
                   help="of an rnn cell (the weights do not say)")
    p.add_argument("--vocab", metavar="FILE", help="the model's vocabulary, one token per line "
                   "in its id order (or a JSON list), when its ids are not the task's")
    p.add_argument("--fold-unk", action="store_true",
                   help="with --vocab: fold every model word the task lacks into the task's "
                   "<unk> (its probability is their summed probability, so the task's "
                   "perplexity is the model's own); says how many were folded")
    p.add_argument("--part", action="append", default=[], metavar="PART=PREFIX",
                   help="where a part sits when it is not found: embedding=, rnn=, head= "
                   "(embedding=none: float input)")
    p.add_argument("--out", required=True, help="run directory to create")
    p.set_defaults(func=_run)
