"""memloss diagnostics: probes that measure memory loss, as tidy DataFrames.

Every probe is a frozen dataclass registered in :data:`PROBES` and called as
``probe(net, task, *, generator=None) -> ProbeResult(frame, summary)``;
:func:`run_probes` runs several and writes ``diagnostics/<probe>.csv|json`` into a run
directory. The columns of each frame are described in ``docs/diagnostics.md``.

Importing the package imports every module in it, so a probe is one module with its
``@PROBES.register`` line and no other edit (a probe from another package registers
through the ``memloss.probes`` entry point).
"""
import importlib
import pkgutil

from .base import BASE_COLUMNS, PROBES, NotApplicable, Probe, ProbeResult, Quantity
from memloss.models.inference import MODES
from .run import list_probes, make_probe, run_probes

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["PROBES", "Probe", "ProbeResult", "Quantity", "NotApplicable", "BASE_COLUMNS", "MODES",
           "run_probes", "list_probes", "make_probe"]
