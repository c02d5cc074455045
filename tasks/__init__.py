"""memloss tasks: data -> batches, objectives and metrics, paper presets."""
from .base import SPLITS, TASKS, Batch, Task, list_tasks, make_task

__all__ = ["SPLITS", "TASKS", "Batch", "Task", "list_tasks", "make_task"]
