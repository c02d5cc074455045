"""The names of the inference modes (:mod:`memloss.models.inference` says what each does).

Plain names, without torch, so that the command line can offer them without loading the
models.
"""
from __future__ import annotations

__all__ = ["DETERMINISTIC", "OTHER_SCALING", "TRAIN_MODE", "MC", "INFERENCE_MODES", "MODES"]

DETERMINISTIC, OTHER_SCALING, TRAIN_MODE, MC = "deterministic", "other-scaling", "train-mode", "mc"
#: the modes evaluation scores a net under
INFERENCE_MODES = (DETERMINISTIC, MC, TRAIN_MODE)
#: the modes probes run under (``other-scaling`` makes Semeniuta's scaling mismatch explicit)
MODES = (DETERMINISTIC, OTHER_SCALING, TRAIN_MODE, MC)
