"""Dataset training for Trace: minibatches, validation, budgets, checkpoints, progress.

``trace_nb.train(workflow, dataset, feedback, optimizer, ...)`` runs the loop; see
:func:`trace_nb.training.loop.train`.
"""

from __future__ import annotations

from ..errors import CheckpointError, FeedbackError
from ..llm.usage import Usage
from .budget import Budget, Projection
from .checkpoint import load_checkpoint, restore_best, save_checkpoint
from .engines import RayEngine
from .evaluate import EvalReport, ExampleResult, evaluate, parse_feedback
from .loop import TrainResult, train
from .progress import ProgressListener, TqdmProgress
from .run_usage import RunUsage, WorkerUsage

__all__ = [
    "Budget",
    "CheckpointError",
    "EvalReport",
    "ExampleResult",
    "FeedbackError",
    "Projection",
    "ProgressListener",
    "RayEngine",
    "RunUsage",
    "TqdmProgress",
    "TrainResult",
    "Usage",
    "WorkerUsage",
    "evaluate",
    "load_checkpoint",
    "parse_feedback",
    "restore_best",
    "save_checkpoint",
    "train",
]
