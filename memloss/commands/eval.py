"""``memloss eval RUN_DIR [--mode deterministic|mc|train-mode ...] [--samples K]``: score a
run's weights on a split and record the result: an entry in ``evaluations.jsonl`` naming the
checkpoint it came from, and, for a finished run, its final.json (atomically)."""
from __future__ import annotations

import argparse
import logging

__all__ = ["add_parser", "eval_run", "eval_run_scored"]

log = logging.getLogger(__name__)


def eval_run(run_dir: str, modes: list[str], samples: int, split: str = "test",
             weights: str = "final", batch_size: int | None = None,
             progress: bool | None = None) -> dict:
    """Evaluate ``run_dir`` under each mode and return ``{mode: metrics}``
    (:func:`eval_run_scored` also says which weights were scored)."""
    return eval_run_scored(run_dir, modes, samples, split, weights, batch_size, progress)[0]


def eval_run_scored(run_dir: str, modes: list[str], samples: int, split: str = "test",
                    weights: str = "final", batch_size: int | None = None,
                    progress: bool | None = None) -> tuple[dict, dict]:
    """Evaluate ``run_dir`` under each mode: ``({mode: metrics}, scored)``, ``scored`` the
    weights evaluated, ``{"weights": "best"|"last", "step", "trained"}`` (``trained``: the
    steps the checkpoint has trained).
    ``progress``: a bar per mode over the batches, with their total (``None``: on a terminal).

    The run's lock is taken before its weights are read and held until the result is
    written, so the result is about the checkpoint the run holds (a run being trained is
    refused as busy). Every evaluation is appended to ``evaluations.jsonl`` with the
    checkpoint it came from (:func:`memloss.core.runfiles.checkpoint_ref`); a finished run's
    ``final.json[split][mode]`` is updated too, while a run whose training has not finished
    gets no final.json (it stays resumable). A non-finite result is never written."""
    from memloss.core import bounds, validate
    from memloss.core import runfiles as rf
    from memloss.core.seeds import stream_seed
    from memloss.models import INFERENCE_MODES
    from memloss.runs import load_run, now, read_config, read_final
    from memloss.tasks import SPLITS, evaluate

    for m in modes:
        validate.choice("eval", "mode", m, INFERENCE_MODES)
    validate.choice("eval", "split", split, SPLITS)
    validate.integer("eval", "samples", samples, maximum=bounds.MAX_SAMPLES)
    validate.optional(validate.integer, "eval", "batch_size", batch_size)
    read_config(run_dir)  # a clear error before a lock file is made in a folder that is no run
    with rf.RunLock(run_dir, "eval"):
        run = load_run(run_dir, weights=weights)
        ckpt = rf.read_checkpoint(run.path)  # the one load_run read: no writer can commit now
        assert ckpt is not None
        ref = rf.checkpoint_ref(ckpt, rf.BEST if run.weights == "best" else rf.MODEL)
        scored = {"weights": run.weights, "step": ref["step"],
                  "trained": None if ckpt.legacy else ckpt.step}
        cfg = run.config["train"]
        bs = batch_size or cfg.get("eval_batch_size", 256)
        results = {}
        for m in modes:
            log.info("%s: scoring the %s split under %s inference%s", run_dir, split, m,
                     f" ({samples} mask samples per batch)" if m == "mc" else "")
            metrics = evaluate(run.net, run.task, split, mode=m, samples=samples, batch_size=bs,
                               seed=stream_seed(cfg.get("seed", 0), "eval"), progress=progress)
            results[m] = {**metrics, "samples": samples} if m == "mc" else metrics
        bad = rf.non_finite_scores(results)
        if bad:
            raise ValueError(f"evaluating {run_dir} ({run.weights} weights) gave non-finite "
                             f"{', '.join(bad[:3])}; nothing was written")
        rf.append_jsonl(run.path / rf.EVALUATIONS, {
            "split": split, "weights": run.weights, "checkpoint": ref, "scores": results,
            "created": now()})
        final = dict(read_final(run.path))
        if not final:
            log.warning("%s has not finished training: the scores are recorded in %s, not in "
                        "final.json (the run stays resumable)", run.path, rf.EVALUATIONS)
            return results, scored
        final.setdefault("weights", run.weights)
        final.setdefault(split, {}).update(results)
        if final["weights"] != run.weights:  # this split was scored with other weights
            final[f"{split}_weights"] = run.weights
        else:
            final.pop(f"{split}_weights", None)
        rf.write_json(run.path / rf.FINAL, final)
    return results, scored


def _run(args: argparse.Namespace) -> int:
    from .train import weights_scored

    modes = args.mode or ["deterministic"]
    results, scored = eval_run_scored(args.run_dir, modes, args.samples, args.split,
                                      args.weights, args.batch_size)
    print(f"{args.run_dir}: scored "
          f"{weights_scored(scored['weights'], scored['step'], scored['trained'])}")
    for mode, metrics in results.items():
        shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        print(f"{args.run_dir}: {args.split} {mode}: {shown}")
    return 0


def add_parser(sub: "argparse._SubParsersAction") -> None:
    from memloss.models.modes import INFERENCE_MODES  # the names only: no torch for --help

    p = sub.add_parser("eval", help="evaluate a run directory under inference modes",
                       description="Score a run's weights on a split under one or more "
                       "inference modes and record the result in its evaluations.jsonl (with "
                       "the checkpoint it came from) and, once its training has finished, in "
                       "its final.json (atomically). A run being trained is busy: try again "
                       "when it has finished. A progress bar over the batches shows on a "
                       "terminal; MC inference costs --samples forward passes per batch.")
    p.add_argument("run_dir", help="a directory written by `memloss train`")
    p.add_argument("--mode", action="append", choices=INFERENCE_MODES,
                   help="inference mode (repeatable; default deterministic)")
    p.add_argument("--samples", type=int, default=10, help="MC samples for --mode mc")
    p.add_argument("--split", default="test", help="split to score (train, valid, test)")
    p.add_argument("--weights", default="final", choices=("final", "last", "best"),
                   help="which saved weights to use (final = those final.json was computed with)")
    p.add_argument("--batch-size", type=int, default=None)
    p.set_defaults(func=_run)
