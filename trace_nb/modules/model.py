"""``@model``: turn a plain class into a :class:`~.module.Module`.

The decorator returns a new class with the same ``__name__``, ``__qualname__`` and
``__module__`` that inherits from ``(cls, Module)``, so reprs, errors and
``isinstance(agent, cls)`` all still speak of the user's class. The new class is kept in a
registry under its qualified name; pickling an instance refers to that entry (not to the
module attribute), so pickling works whether the decorator was applied with ``@model`` or
as ``Agent = model(Agent)`` and even after the module attribute was rebound.
"""

from __future__ import annotations

import importlib
from typing import Any

from .module import Module

_MODELS: dict[tuple[str, str], type] = {}


def model(cls: type | None = None) -> Any:
    """Class decorator: make ``cls`` a :class:`Module` with trainable parameters.

    Parameters
    ----------
    cls
        A plain class. Its ``@bundle(trainable=True)`` methods become per-instance code
        parameters and its ``ParameterNode`` attributes trainable values.

    Returns
    -------
    type
        A subclass of ``cls`` and ``Module`` carrying ``cls``'s names. A class that already
        is a Module is returned unchanged. Usable as ``@model`` and ``@model()``.

    Examples
    --------
    >>> @model
    ... class Agent:
    ...     @bundle(trainable=True)
    ...     def act(self, plan):
    ...         return plan
    >>> Agent().named_parameters()          # doctest: +SKIP
    {'agent.act': ParameterNode(name='agent_act', ...)}
    """
    if cls is None:
        return model
    if not isinstance(cls, type):
        raise TypeError(f"@model decorates a class, got {type(cls).__name__} {cls!r}")
    if issubclass(cls, Module):
        return cls
    known = _MODELS.get((cls.__module__, cls.__qualname__))
    if known is not None and known.__dict__["__trace_model__"] is cls:
        return known  # decorating the same class twice gives the same class
    namespace = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__trace_model__": cls,  # the user's class: export reads its source
    }
    new = type(cls)(cls.__name__, (cls, Module), namespace)
    _MODELS[(new.__module__, new.__qualname__)] = new
    return new


def original_class(cls: type) -> type:
    """The class as the user wrote it (before ``@model``), for reading its source."""
    return cls.__dict__.get("__trace_model__", cls)


def _new_instance(module: str, qualname: str) -> Any:
    """Unpickling helper: an empty instance of the @model class registered under that name."""
    cls = _MODELS.get((module, qualname))
    if cls is None:
        importlib.import_module(module)  # running the decorator registers the class
        cls = _MODELS.get((module, qualname))
    if cls is None:
        raise ImportError(
            f"cannot unpickle {qualname}: no @model class of that name in module {module!r}"
        )
    return cls.__new__(cls)
