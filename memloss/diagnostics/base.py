"""What every probe shares: the result type, the registry, and tidy-frame helpers.

A probe is one module holding a small frozen dataclass that is called as
``probe(net, task, *, generator=None)`` and returns a :class:`ProbeResult`: a tidy
long-format :class:`pandas.DataFrame` (one measured number per row) and a JSON-safe summary
dict. Probes never plot. The class declares everything about it: its ``title`` and the
words and unit of every ``quantity`` it writes (:class:`Quantity`; they go into its JSON
file and the reports draw with them), and the check of each field
(:func:`checked`, run once by :meth:`Probe.__post_init__`). The package imports every one
of its modules, so a module that registers a probe needs no other line.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Iterable, Mapping

import pandas as pd
import torch

from memloss.models import Net
from memloss.core.registry import Registry

__all__ = ["ProbeResult", "Probe", "PROBES", "BASE_COLUMNS", "Quantity", "NotApplicable",
           "checked", "maybe", "make_frame", "json_safe", "net_device", "default_generator"]

#: columns every probe frame has, in this order (probe-specific columns follow)
BASE_COLUMNS = ("probe", "scheme", "cell", "scaling", "mode", "quantity", "layer", "t", "value")


class NotApplicable(ValueError):
    """The probe cannot measure this net (its cell lacks what the probe reads, or it cannot
    be run step by step); the message is one line naming what is missing. :func:`run_probes`
    leaves such a probe out with a warning when every probe runs."""


@dataclass(frozen=True)
class Quantity:
    """What a probe's ``quantity`` means: its ``words`` and ``unit`` (shown on the axes)."""

    words: str
    unit: str


#: a field check: ``check(owner, field name, value)`` raising ValueError with one line
Check = Callable[..., Any]


def checked(default: Any, check: Check, *args: Any, **kwargs: Any) -> Any:
    """A probe field whose value ``check(probe name, field name, value, *args, **kwargs)``
    accepts (a validator of :mod:`memloss.core.validate`, or any with that signature); the
    base class runs every such check once when the probe is made."""
    return field(default=default, metadata={"check": (check, args, kwargs)})


def maybe(check: Check) -> Check:
    """``check`` for a field that may also be None."""
    def run(owner: str, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        if value is not None:
            check(owner, name, value, *args, **kwargs)
    return run


@dataclass(frozen=True)
class ProbeResult:
    """A probe's output: ``frame`` (tidy, long format) and ``summary`` (JSON-safe)."""

    frame: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


class Probe(abc.ABC):
    """Base class of the probes: subclasses are frozen dataclasses with a ``name``, a
    ``title`` (a report section's heading), the :class:`Quantity` of every quantity they
    write (``quantities``; a quantity named after the task's metric is described by the
    metric), and a ``rank`` (where its section comes in a report: memory loss first)."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    quantities: ClassVar[Mapping[str, Quantity]] = {}
    rank: ClassVar[int] = 100

    def __post_init__(self) -> None:
        """Run each field's :func:`checked` check, then :meth:`check` (checks across fields)."""
        for f in fields(self):  # type: ignore[arg-type]
            spec = f.metadata.get("check")
            if spec is not None:
                check, args, kwargs = spec
                check(self.name, f.name, getattr(self, f.name), *args, **kwargs)
        self.check()

    def check(self) -> None:
        """Checks that involve several fields (raise ValueError with one line)."""

    @classmethod
    def words(cls) -> dict[str, Any]:
        """What the probe writes, in words, for its JSON file: title and quantities."""
        return {"title": cls.title or cls.name,
                "quantities": {q: {"words": v.words, "unit": v.unit}
                               for q, v in cls.quantities.items()}}

    @abc.abstractmethod
    def __call__(self, net: Net, task: Any, *, generator: torch.Generator | None = None
                 ) -> ProbeResult:
        """Measure ``net`` on ``task``; masks are drawn from ``generator``."""

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Parameters that make this probe run in well under a second on a tiny net, for the
        generated tests (every registered probe runs on every cell with them). Every probe
        declares this; one that does not fails the tests instead of being skipped."""
        raise NotImplementedError(f"probe {cls.name!r} declares no tiny parameters: implement "
                                  f"{cls.__name__}.tiny() returning small parameters")

    @property
    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


PROBES: Registry[type[Probe]] = Registry("probe", entry_points="memloss.probes")


def net_device(net: Net) -> torch.device:
    for p in net.parameters():
        return p.device
    return torch.device("cpu")


def default_generator(generator: torch.Generator | None, seed: int = 0) -> torch.Generator:
    """The caller's generator, or a fresh CPU one seeded with ``seed`` (reproducible probes)."""
    if generator is None:
        return torch.Generator().manual_seed(seed)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def make_frame(probe: str, net: Net, rows: Iterable[dict[str, Any]],
               extra_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Build a probe frame from row dicts; fills ``probe``, ``scheme``, ``cell`` and puts
    :data:`BASE_COLUMNS` first. Missing ``layer``/``t`` are NA (nullable integers)."""
    from memloss.models.inference import net_scaling

    rows = list(rows)
    cols = list(BASE_COLUMNS) + [c for c in extra_columns if c not in BASE_COLUMNS]
    df = pd.DataFrame(rows, columns=cols)
    df["probe"] = probe
    df["scheme"] = str(net.config.scheme)
    df["cell"] = net.config.cell
    if df["scaling"].isna().all():
        df["scaling"] = net_scaling(net)
    for c in ("layer", "t"):
        df[c] = pd.array(df[c].astype("Float64").round(), dtype="Int64") if len(df) else \
            pd.array([], dtype="Int64")
    df["value"] = df["value"].astype(float)
    return df


def json_safe(obj: Any) -> Any:
    """Turn tensors/numpy scalars into floats and non-finite floats into None (valid JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return json_safe(obj.tolist())
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    try:
        x = float(obj)
    except (TypeError, ValueError):
        return str(obj)
    return x if math.isfinite(x) else None
