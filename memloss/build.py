"""From a :class:`~memloss.config.TrainConfig` to the objects a run needs: its task, the
net's full config (the task fills in the data sizes) and the net itself."""
from __future__ import annotations

from dataclasses import fields, is_dataclass, replace

import torch

from memloss.core import bounds
from memloss.core.seeds import stream_seed
from memloss.models import DATA_FIELDS, Net, NetConfig
from memloss.models.net import check_bounds
from memloss.tasks import TASKS, Task, make_task

from .config import TrainConfig

__all__ = ["build_task", "task_from", "net_config", "build_net", "device"]


def build_task(config: TrainConfig) -> Task:
    """The config's task; unknown parameters fail listing the valid ones."""
    return task_from(config.task, config.task_params)


def task_from(name: str, params: dict) -> Task:
    """A registered task from its name and parameters; unknown parameters fail listing the
    valid ones."""
    cls = TASKS.get(name)
    valid = [f.name for f in fields(cls)] if is_dataclass(cls) else None
    if valid is not None:
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(f"task {name!r} has no parameter {unknown[0]!r}; valid "
                             f"parameters: {', '.join(valid) or 'none'} (--set task.NAME=VALUE)")
    try:
        return make_task(name, **params)
    except TypeError as e:
        raise ValueError(f"task {name!r} rejected its parameters {params} ({e}); valid "
                         f"parameters: {', '.join(valid or []) or 'see its docs'}") from None


def net_config(config: TrainConfig, task: Task) -> NetConfig:
    """The complete NetConfig of a run: the config's net with the task's data sizes. The
    run's bounds are checked here, before anything is built (:mod:`memloss.core.bounds`):
    its threads against the cores, the net's size against the memory."""
    sizes = task.net_kwargs()
    bad = sorted(set(sizes) - set(DATA_FIELDS))
    if bad:
        raise ValueError(f"task {config.task!r} fixes {bad}, which are not data sizes")
    bounds.check_threads("TrainConfig", config.threads)
    net = replace(config.net, **sizes)
    check_bounds(net)
    return net


def build_net(config: TrainConfig, task: Task, net: NetConfig | None = None) -> Net:
    """The net for ``task``, initialised from the run's ``init`` stream without touching the
    global RNG. ``net``: its complete config, when already built by :func:`net_config`."""
    cfg = net if net is not None else net_config(config, task)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(config.seed, "init"))
        return Net(cfg)


def device(name: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when there is one) as a device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use --set device=cpu")
    return torch.device(name)
