"""Execution paths of a recurrent layer, all running the cell's one step function:
``reference`` (the step in a loop), ``native`` (torch.nn's kernel, no mask in the
recurrence), ``fused`` (one autograd Function per layer, its step kernels derived from the
step). See :mod:`memloss.models.paths.common` for the contract."""
from .common import LayerRun, State
from .fused import fused_layer
from .native import native_eligible, native_layer
from .reference import reference_layer

__all__ = ["LAYER_RUNS", "LayerRun", "State", "fused_layer", "native_eligible", "native_layer",
           "reference_layer", "traced"]

#: path name -> the function running one layer on it
LAYER_RUNS: dict[str, LayerRun] = {"reference": reference_layer, "native": native_layer,
                                   "fused": fused_layer}


def traced() -> bool:
    """True while a tool traces the model (``torch.compile``, ``torch.export``,
    ``torch.jit.trace``, ``torch.func`` transforms): layers then run the reference loop, which
    is plain differentiable PyTorch and unrolls into the traced graph."""
    import torch

    functorch = getattr(torch._C, "_are_functorch_transforms_active", lambda: False)
    return bool(torch.compiler.is_compiling() or torch.jit.is_tracing() or functorch())
