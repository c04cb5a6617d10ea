"""``Module``: a class whose instances hold trainable values and trainable methods.

Like ``torch.nn.Module``, a module finds its parameters by walking its attributes:

* attributes holding a :class:`~trace_nb.graph.ParameterNode` (trainable values);
* methods decorated with ``@bundle(trainable=True)``: each *instance* has its own code
  parameter (see :meth:`trace_nb.graph.BundledFunction.__get__`), so two agents of one
  class are optimized separately;
* attributes holding a trainable bundled function;
* sub-modules, and lists, tuples and dicts of modules or parameters (at any depth).

Readable names (``agent.planner.prompt``, ``agent.tools[0].prompt``) are for display and
persistence. The name the LLM sees starts from the node's label: when a module first
reports a parameter whose label is still the default one (``param``, ``planner_plan``), it
labels the node after its path (``agent_planner_prompt``). Labels given by the user are
kept. Relabelling happens once: later walks with another prefix do not relabel again. An
optimizer numbers repeated labels among its own parameters (two agents of one class). Both
go through :func:`trace_nb.graph.names.relabel`, the one writer of a label after a node is
made: the path is known only when the module is walked, not where the node is made.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

from ..graph import BundledFunction, ParameterNode
from ..graph import names as _names

BUNDLE_KEY = "__trace_bundle_"  # where BundledFunction.__get__ keeps an instance's bundle
_CODE_STATE = "__trace_code__"  # key of the method code in a pickled module's state


@dataclass
class Entry:
    """One discovered parameter: its path, node, owner and (for code) the method name."""

    path: tuple[tuple[str, Any], ...]  # ("attr", name) or ("item", index/key) steps
    node: ParameterNode
    owner: Any
    method: str | None = None
    default_base: str = "param"

    def display(self, prefix: str = "") -> str:
        """``prefix.attr[0].attr`` (no leading dot when ``prefix`` is empty)."""
        text = prefix
        for kind, key in self.path:
            text += (f".{key}" if text else str(key)) if kind == "attr" else f"[{key!r}]"
        return text

    def identifier(self, prefix: str) -> str:
        return _names.sanitize("_".join([prefix, *(str(key) for _, key in self.path)]))


def snake_case(name: str) -> str:
    """``BattleshipAgent`` -> ``battleship_agent`` (the default prefix of a module)."""
    return _names.sanitize(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower())


def trainable_methods(obj: Any) -> dict[str, BundledFunction]:
    """The ``@bundle(trainable=True)`` methods of ``obj``'s class, in definition order."""
    cls = type(obj)
    found: dict[str, BundledFunction] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            if isinstance(value, BundledFunction) and value.trainable:
                found[attr] = value
    # A subclass may override a trainable method with something else.
    return {k: v for k, v in found.items() if inspect.getattr_static(cls, k, None) is v}


def method_bundle(obj: Any, method: BundledFunction) -> BundledFunction:
    """``obj``'s own copy of a trainable method (created on first access, not called)."""
    method.__get__(obj, type(obj))
    return obj.__dict__[BUNDLE_KEY + method.__name__]


def claim_name(node: ParameterNode, base: str) -> None:
    """Label ``node`` ``base`` (sanitized): see :func:`trace_nb.graph.names.relabel`."""
    _names.relabel(node, base)


def entries(obj: Any) -> list[Entry]:
    """Every parameter reachable from ``obj``, each once, in a stable order."""
    out: list[Entry] = []
    _walk(obj, (), set(), set(), out)
    return out


def _walk(obj: Any, path: tuple, seen: set[int], nodes: set[int], out: list[Entry]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    for attr, method in trainable_methods(obj).items():
        param = method_bundle(obj, method).parameter
        default = f"{type(obj).__name__.lower()}_{method.__name__}"
        _add(Entry((*path, ("attr", attr)), param, obj, attr, _names.sanitize(default)), nodes, out)
    for attr, value in list(vars(obj).items()):
        if not attr.startswith(BUNDLE_KEY):
            _visit(value, (*path, ("attr", attr)), obj, seen, nodes, out)


def _visit(
    value: Any, path: tuple, owner: Any, seen: set[int], nodes: set[int], out: list[Entry]
) -> None:
    if isinstance(value, ParameterNode):
        _add(Entry(path, value, owner), nodes, out)
    elif isinstance(value, BundledFunction) and value.parameter is not None:
        _add(Entry(path, value.parameter, owner, None, f"code_{value.__name__}"), nodes, out)
    elif isinstance(value, Module):
        _walk(value, path, seen, nodes, out)
    elif isinstance(value, list | tuple | dict) and id(value) not in seen:
        seen.add(id(value))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in list(items):
            _visit(item, (*path, ("item", key)), owner, seen, nodes, out)


def _add(entry: Entry, nodes: set[int], out: list[Entry]) -> None:
    if id(entry.node) not in nodes:  # a shared parameter is reported under its first path
        nodes.add(id(entry.node))
        out.append(entry)


def module_parameters(obj: Any, prefix: str | None = None) -> dict[str, ParameterNode]:
    """Readable name -> parameter for every parameter of ``obj`` (any object, usually a Module).

    Parameters
    ----------
    obj
        The module (or any object with attributes) to walk.
    prefix
        Put before every name; defaults to the snake-case class name (``agent``).

    Returns
    -------
    dict
        ``{"agent.reason": <ParameterNode agent_reason>, "agent.planner.prompt": ...}``.
        Parameters still carrying a default name are renamed after their path.
    """
    if prefix is None:
        prefix = snake_case(type(obj).__name__)
    out: dict[str, ParameterNode] = {}
    for entry in entries(obj):
        if entry.node.label == entry.default_base:
            claim_name(entry.node, entry.identifier(prefix or snake_case(type(obj).__name__)))
        out[entry.display(prefix)] = entry.node
    return out


class Module:
    """Base class for trainable agents (``class Agent(trace_nb.Module)`` or ``@trace_nb.model``).

    Subclasses need not call ``super().__init__()``. Define :meth:`forward`; calling the
    module calls it. Parameters are found as described in this module's docstring.

    Pickling (and ``copy.copy``/``deepcopy``) stores parameter values and method code as
    plain data: the copy gets fresh parameter nodes with the same labels and no feedback,
    so training the copy never touches the original.
    """

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} defines no forward() method")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def named_parameters(self, prefix: str | None = None) -> dict[str, ParameterNode]:
        """Readable name -> parameter (see :func:`module_parameters`)."""
        return module_parameters(self, prefix)

    def parameters(self) -> list[ParameterNode]:
        """Every trainable value and trainable method's code parameter, e.g. for OptoPrime."""
        return list(module_parameters(self).values())

    def parameters_dict(self) -> dict[str, ParameterNode]:
        """Name relative to this module (``prompt``, ``act``, ``planner.prompt``) -> parameter.

        The reference Trace's spelling; :meth:`named_parameters` gives the same with the
        class-name prefix.
        """
        return {e.display(): e.node for e in entries(self)}

    def zero_feedback(self) -> None:
        """Forget the feedback every parameter received."""
        for entry in entries(self):
            entry.node.zero_feedback()

    def state_dict(self) -> dict[str, Any]:
        """Relative name (``planner.prompt``) -> current value or source code."""
        from .persist import state_dict

        return state_dict(self)

    def load_state_dict(self, values: dict[str, Any], strict: bool = True) -> Module:
        """Set parameters from :meth:`state_dict` output; returns ``self``."""
        from .persist import load_state_dict

        return load_state_dict(self, values, strict)

    def save(self, path: str) -> None:
        """Write values and code as JSON (atomically). See :func:`.persist.save`."""
        from .persist import save

        save(self, path)

    def load(self, path: str) -> Module:
        """Read a file written by :meth:`save` into this instance; returns ``self``."""
        from .persist import load

        return load(self, path)

    def export(self, path: str) -> str:
        """Write a runnable Python file of this class with the learned values and code."""
        from .persist import export

        return export(self, path)

    def __repr__(self) -> str:
        names = ", ".join(e.display() for e in entries(self))
        return f"{type(self).__name__}({names})"

    # -- pickling: values and code as plain data; nodes are made afresh on load --
    def __getstate__(self) -> dict[str, Any]:
        memo: dict[int, Any] = {}
        state = {k: _freeze(v, memo) for k, v in vars(self).items() if not k.startswith(BUNDLE_KEY)}
        code = {}
        for key, bundled in vars(self).items():
            if key.startswith(BUNDLE_KEY) and bundled.parameter is not None:
                p = bundled.parameter
                code[key[len(BUNDLE_KEY) :]] = _FrozenParam(
                    p.peek(), p.label, p.description, p.constraint, True
                )
        state[_CODE_STATE] = code
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        code = state.pop(_CODE_STATE, {})
        memo: dict[int, Any] = {}
        self.__dict__.update({k: _thaw(v, memo) for k, v in state.items()})
        methods = {m.__name__: m for m in trainable_methods(self).values()}
        for fname, saved in code.items():
            if fname in methods:
                param = method_bundle(self, methods[fname]).parameter
                param.set_value(saved.value)
                param.description, param.constraint = saved.description, saved.constraint
                claim_name(param, saved.base or param.name)

    def __reduce_ex__(self, protocol: Any) -> Any:
        if "__trace_model__" in type(self).__dict__:  # made by @model: rebuild via the registry
            from .model import _new_instance

            cls = type(self)
            return (_new_instance, (cls.__module__, cls.__qualname__), self.__getstate__())
        return super().__reduce_ex__(protocol)


@dataclass
class _FrozenParam:
    """A parameter as plain data inside a pickled module."""

    value: Any
    base: str | None
    description: str | None
    constraint: str | None
    is_code: bool


def _freeze(value: Any, memo: dict[int, Any]) -> Any:
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, ParameterNode):
        out: Any = _FrozenParam(
            value.peek(), value.label, value.description, value.constraint, value.is_code
        )
    elif type(value) in (list, tuple):
        out = type(value)(_freeze(v, memo) for v in value)
    elif type(value) is dict:
        out = {k: _freeze(v, memo) for k, v in value.items()}
    else:
        return value
    memo[id(value)] = out
    return out


def _thaw(value: Any, memo: dict[int, Any]) -> Any:
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, _FrozenParam):
        out: Any = ParameterNode(
            value.value,
            name=value.base,
            description=value.description,
            constraint=value.constraint,
            is_code=value.is_code,
        )
    elif type(value) in (list, tuple):
        out = type(value)(_thaw(v, memo) for v in value)
    elif type(value) is dict:
        out = {k: _thaw(v, memo) for k, v in value.items()}
    else:
        return value
    memo[id(value)] = out
    return out
