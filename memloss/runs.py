"""Run directories as the application sees them: what a new run records, and loading a run
back into a net and a task.

The files and their format are :mod:`memloss.core.runfiles`; this module builds what goes in
them from configs (``config.json``: the resolved configs, labels and the paper row a run
reproduces, so that reports read them instead of re-deriving them) and rebuilds the net and
the task from them (:func:`load_run`).
"""
from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

from memloss.build import device as as_device
from memloss.build import task_from
from memloss.config import RESUME_OVERRIDABLE, TrainConfig, changed_fields
from memloss.core import runfiles as rf
from memloss.core import validate
from memloss.core.runfiles import RunDirError
from memloss.models import Net, NetConfig
from memloss.tasks import Task

__all__ = ["Run", "RunConfig", "load_run", "probe_run", "config_record", "versions",
           "source_commit", "now", "RunDirError", "read_config", "read_run_config", "probe_source",
           "trained_configs", "read_final", "edited_fields", "check_not_edited"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    """A run's config.json (or a checkpoint's manifest), checked, with its two configs
    parsed once: ``record`` is the whole JSON object, ``train`` its ``train`` section as a
    :class:`TrainConfig` and ``net`` its ``net`` section, the complete
    :class:`~memloss.models.NetConfig` (the scheme text, the same in both, parsed once)."""

    record: dict
    train: TrainConfig
    net: NetConfig

    @classmethod
    def parse(cls, record: Mapping[str, Any], file: Path) -> "RunConfig":
        """Parse ``record``'s sections; a bad one is a :class:`RunDirError` naming ``file``."""
        def bad(section: str, e: Exception) -> RunDirError:
            return RunDirError(f"{file}: section {section}: {str(e)[:200]}; the file was edited "
                               "or damaged: restore it or re-run training")

        try:
            train = TrainConfig.from_dict(record["train"])
        except (ValueError, TypeError, KeyError) as e:
            raise bad("train", e) from None
        section = record.get("net")
        try:
            if isinstance(section, Mapping) and section.get("scheme") == train.net.scheme.spec:  # type: ignore[union-attr]
                section = {**section, "scheme": train.net.scheme}  # the same scheme: parsed once
            net = NetConfig.from_dict(section)  # type: ignore[arg-type]
        except (ValueError, TypeError) as e:
            raise bad("net", e) from None
        return cls(dict(record), train, net)


@dataclass
class Run:
    """A run directory with its configs, net and task.

    ``config``: the whole config.json dict (labels, task information, the preset it
    reproduces, resumptions); ``train_config`` and ``net_config``: its ``train`` and ``net``
    sections, parsed once (the complete :class:`~memloss.models.NetConfig`, data sizes
    included). ``net``: a :class:`~memloss.models.Net` in eval mode with the weights
    ``weights`` names (``"last"`` or ``"best"``). ``task``: the task rebuilt from the
    config. ``metrics``: the metrics.jsonl records. ``final``: final.json (empty before
    training finished).
    """

    path: Path
    config: dict
    train_config: TrainConfig
    net_config: NetConfig
    net: Net
    task: Task
    metrics: list[dict]
    final: dict
    weights: str

    @property
    def preset(self) -> dict | None:
        """The paper row the run reproduces (``config.json["info"]["preset"]``), if any."""
        return (self.config.get("info") or {}).get("preset")


def versions() -> dict[str, str]:
    """Python, platform and the versions of the packages a run's numbers depend on."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("memloss", "torch", "numpy", "safetensors", "pandas", "tqdm"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def source_commit() -> str:
    """The commit of the memloss source a run uses: ``git rev-parse HEAD`` of the checkout
    that holds the imported package, with ``+dirty`` when tracked files under ``memloss/``
    differ from it; ``memloss VERSION`` when the package is not a git checkout (installed)."""
    import subprocess

    package = Path(__file__).resolve().parent
    git = ["git", "-C", str(package.parent)]
    try:
        top = subprocess.run([*git, "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10)
        if top.returncode == 0 and Path(top.stdout.strip()).resolve() == package.parent:
            head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
            dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no",
                                    "--", package.name], capture_output=True, text=True,
                                   timeout=10, check=True).stdout.strip()
            return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    from memloss import __version__

    return f"memloss {__version__}"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def config_record(config: TrainConfig, net: NetConfig, *, path: str, task_info: dict,
                  command: Sequence[str], info: dict | None = None) -> dict[str, Any]:
    """The config.json of a new run.

    ``labels`` holds what tables and legends show (the scheme's text and short forms) and
    ``info.preset`` the paper row the run reproduces: the one given (``memloss train
    PRESET``, the demo), else the preset with the same task, task setting and scheme, if
    any. Reports read these; they parse nothing.
    """
    from memloss.presets import match_preset

    info = dict(info or {})
    if "preset" not in info:
        preset = match_preset(config, command)
        if preset is not None:
            info["preset"] = preset.record()
    scheme = net.scheme
    return {"train": config.to_dict(), "net": net.to_dict(), "path": path,
            "labels": {"scheme": scheme.spec, "scheme_short": scheme.short},  # type: ignore[union-attr]
            "task_info": task_info, "command": list(command), "versions": versions(),
            "commit": source_commit(), "seed": config.seed, "created": now(), "resumed": [], "info": info}


def config_file(path: "str | os.PathLike[str]") -> Path:
    """The config.json of the run directory ``path``; a missing directory or file is a
    :class:`RunDirError` saying what to pass instead."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"run directory {path} does not exist; pass the --out folder of a "
                          "`memloss train` run")
    file = path / rf.CONFIG
    if not file.is_file():
        raise RunDirError(f"{file} is missing; {path} is not a memloss run directory (written "
                          "by `memloss train --out`)")
    return file


def read_run_config(path: "str | os.PathLike[str]") -> RunConfig:
    """A run's config.json, read once and checked: its structure
    (:mod:`memloss.core.schemas`), and its ``train`` and ``net`` sections, parsed."""
    file = config_file(path)
    return RunConfig.parse(rf.read_json(file, "config"), file)


def read_config(path: "str | os.PathLike[str]") -> dict:
    """A run's config.json as a dict, checked as :func:`read_run_config` does."""
    return read_run_config(path).record


def trained_configs(ckpt: "rf.Checkpoint | None") -> RunConfig | None:
    """The configs the checkpoint's weights were trained under, from its manifest (None
    without a checkpoint, or for one written before manifests recorded them)."""
    if ckpt is None or ckpt.legacy:
        return None
    return RunConfig.parse(ckpt.manifest, ckpt.run_dir / rf.CHECKPOINT)


def read_final(path: "str | os.PathLike[str]") -> dict:
    """A run's final.json, checked ({} before training finished)."""
    file = Path(path) / rf.FINAL
    return rf.read_json(file, "final") if file.exists() else {}


def edited_fields(config: RunConfig, trained: RunConfig | None) -> list[str]:
    """The fields of config.json (``train.X``, ``net.X``) that differ from the configs the
    checkpoint's weights were trained under (:func:`trained_configs`), besides those a
    resume may change: a hand edit that would make the weights be used under another
    scheme, task or net."""
    if trained is None:
        return []
    net, trained_net = config.net.to_dict(), trained.net.to_dict()
    out = [f"train.{k}" for k in changed_fields(config.train, trained.train)
           if k not in RESUME_OVERRIDABLE]
    return out + [f"net.{k}" for k in net if net[k] != trained_net.get(k)]


def check_not_edited(path: Path, config: RunConfig, trained: RunConfig | None) -> None:
    """Refuse a config.json edited after its checkpoint (see :func:`edited_fields`)."""
    edited = edited_fields(config, trained)
    if edited:
        raise RunDirError(f"{path / rf.CONFIG} was edited after the checkpoint was written "
                          f"({edited[0]} differs from the config the weights were trained under, "
                          f"kept in {rf.CHECKPOINT}); restore config.json, or start a new run "
                          "to change it")


def _checked_weights(path: Path, config: RunConfig, chosen: str, final: dict,
                     weights: str) -> dict:
    """The verified weights ``chosen`` names; with ``weights="final"`` they must be those
    final.json was scored with."""
    ckpt = rf.read_checkpoint(path)
    if ckpt is None:
        raise RunDirError(f"{path} has no checkpoint yet (its training stopped before the "
                          f"first one); resume it with `memloss train --resume {path}`")
    check_not_edited(path, config, trained_configs(ckpt))
    if weights == "final" and final and not ckpt.legacy:
        have = ckpt.manifest["best_step"] if chosen == "best" else ckpt.step
        if final.get("weights_step") is not None and have != final["weights_step"]:
            raise RunDirError(f"{path}: final.json was scored with the {chosen} weights of step "
                              f"{final['weights_step']}, but the checkpoint now holds step {have} "
                              f"(the run was resumed and has not finished); finish it with "
                              f"`memloss train --resume {path}` or pass --weights last")
    name = rf.BEST if chosen == "best" else rf.MODEL
    for attempt in range(3):
        try:
            return ckpt.weights(name)
        except RunDirError:
            new = rf.read_checkpoint(path)  # a writer may have committed a newer checkpoint
            if attempt == 2 or ckpt.legacy or new is None or new.manifest == ckpt.manifest:
                raise
            ckpt = new
    raise AssertionError("unreachable")


def load_run(path: "str | os.PathLike[str]", weights: str = "final", device: str = "cpu") -> Run:
    """Load a run directory written by :func:`memloss.training.train`.

    ``weights``: ``"last"`` (the checkpoint's model weights), ``"best"`` (best validation)
    or ``"final"`` (whichever final.json was computed with; "last" if there is no
    final.json). Every file is validated; the weights against the checkpoint manifest's
    digest, and weights holding NaN or inf are refused.
    """
    path = Path(path)
    validate.choice("load_run", "weights", weights, ("final", "last", "best"))
    dev = as_device(device)
    config = read_run_config(path)
    final = read_final(path)
    chosen = final.get("weights", "last") if weights == "final" else weights
    net = Net(config.net)
    state = _checked_weights(path, config, chosen, final, weights)
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise RunDirError(f"weights in {path} do not match the net in its config.json: "
                          f"{str(e)[:200]}") from None
    net.to(dev).eval()
    task = task_from(config.train.task, dict(config.train.task_params))
    return Run(path, config.record, config.train, config.net, net, task,
               rf.read_jsonl(path / rf.METRICS), final, chosen)


def probe_run(path: "str | os.PathLike[str]", names: Sequence[str] | None = None,
              out_dir: "str | os.PathLike[str] | None" = None, *,
              params: dict[str, dict[str, Any]] | None = None, seed: int = 0,
              device: str = "cpu", weights: str = "final") -> dict[str, Any]:
    """Run probes (default: all) on a run directory's net and task and write their outputs
    to ``out_dir`` (default ``RUN/diagnostics``); see :func:`memloss.diagnostics.run_probes`.
    ``weights`` and ``device`` are those of :func:`load_run`."""
    from memloss.diagnostics import PROBES, run_probes

    for name in names or []:
        PROBES.get(name)  # unknown names fail before the run is loaded
    validate.integer("probe", "seed", seed, minimum=0, maximum=validate.MAX_SEED)
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"run directory {str(path)!r} does not exist; pass a directory "
                          "written by `memloss train`")
    if out_dir is not None:  # outside the run: its files are not written, no lock needed
        run = load_run(path, weights=weights, device=device)
        return run_probes(run.net, run.task, names, Path(out_dir), params=params, seed=seed,
                          source=probe_source(run))
    read_config(path)  # a clear error before a lock file is made in a folder that is no run
    with rf.RunLock(path, "probe"):  # taken before the weights are read: they stay current
        run = load_run(path, weights=weights, device=device)
        return run_probes(run.net, run.task, names, path / rf.DIAGNOSTICS, params=params,
                          seed=seed, source=probe_source(run))


def probe_source(run: Run) -> dict[str, Any]:
    """What probe outputs record of the weights they measured (see
    :func:`memloss.core.runfiles.checkpoint_ref`)."""
    ckpt = rf.read_checkpoint(run.path)
    if ckpt is None:
        raise RunDirError(f"{run.path} has no checkpoint; resume it with `memloss train "
                          f"--resume {run.path}`")
    return {"run": str(run.path),
            "checkpoint": rf.checkpoint_ref(ckpt, rf.BEST if run.weights == "best" else rf.MODEL)}
