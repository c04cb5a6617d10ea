"""Modules: classes whose instances hold trainable values and trainable methods.

``trace_nb.Module`` is a base class like ``torch.nn.Module``; ``@trace_nb.model`` turns a
plain class into one. ``parameters()`` feeds an optimizer, ``save``/``load`` keep the
learned values and code as JSON, and ``export`` writes a runnable Python file.
"""

from __future__ import annotations

from .model import model
from .module import Module, module_parameters
from .persist import export, learned, load, load_state_dict, save, state_dict

__all__ = [
    "Module",
    "model",
    "module_parameters",
    "state_dict",
    "load_state_dict",
    "save",
    "load",
    "export",
    "learned",
]
