"""memloss tasks: data -> batches, objectives and metrics, paper presets."""
from .base import SPLITS, TASKS, Batch, Task, list_tasks, make_task
from . import synthetic  # noqa: F401  (registers temporal-order, adding, copy)
from . import mnist  # noqa: F401  (registers seq-mnist, permuted-mnist)
from . import text  # noqa: F401  (registers ptb-word, ptb-char, text-word, text-char)
from . import ner  # noqa: F401  (registers conll-ner)
from . import sentiment  # noqa: F401  (registers sentiment)
from .evaluation import evaluate

__all__ = ["SPLITS", "TASKS", "Batch", "Task", "list_tasks", "make_task", "evaluate"]
