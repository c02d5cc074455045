"""memloss diagnostics: probes that measure memory loss, as tidy DataFrames.

Every probe is a frozen dataclass registered in :data:`PROBES` and called as
``probe(net, task, *, generator=None) -> ProbeResult(frame, summary)``;
:func:`run_probes` runs several and writes ``diagnostics/<probe>.csv|json`` into a run
directory. The columns of each frame are described in ``docs/diagnostics.md``.
"""
from .base import BASE_COLUMNS, PROBES, Probe, ProbeResult
from memloss.models.inference import MODES
# importing registers the probes; this order is the order of `memloss ls probes`
from . import state_decay  # noqa: F401,E402  isort: skip
from . import impulse  # noqa: F401,E402  isort: skip
from . import gradient_flow  # noqa: F401,E402  isort: skip
from . import test_time_scaling  # noqa: F401,E402  isort: skip
from . import saturation  # noqa: F401,E402  isort: skip
from . import retention  # noqa: F401,E402  isort: skip
from . import uncertainty  # noqa: F401,E402  isort: skip
from . import mask_audit  # noqa: F401,E402  isort: skip
from .run import list_probes, make_probe, run_probes

__all__ = ["PROBES", "Probe", "ProbeResult", "BASE_COLUMNS", "MODES", "run_probes",
           "list_probes", "make_probe"]
