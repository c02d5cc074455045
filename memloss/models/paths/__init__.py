"""Execution paths of a recurrent layer: the reference loop and torch's native (cuDNN) kernels."""
from .reference import LayerWeights, reference_layer
from .native import native_eligible, native_layer

__all__ = ["LayerWeights", "reference_layer", "native_eligible", "native_layer"]
