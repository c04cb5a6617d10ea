"""The parameters a session trains: values, ``--code`` functions and modules, by their
notebook names (:class:`ParameterSet`, a part of :class:`~.session.TraceSession`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..graph import BundledFunction, ParameterNode

__all__ = ["ParameterSet"]


def _code_node(b: BundledFunction) -> ParameterNode:
    """The code parameter of ``b``: every function a :class:`ParameterSet` holds was
    bundled with ``trainable=True``, which always gives it one."""
    assert b.parameter is not None
    return b.parameter


class ParameterSet:
    """A cell's trainable parameters: value parameters (``--param x``), code parameters
    (``--code f``) and modules (``--param agent`` holding a ``trace_nb.Module``).

    Parameters
    ----------
    on_change
        Called when the set of parameters changes (a new parameter, function or module),
        so the owner can drop an optimizer made for the old set.
    """

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._values: dict[str, ParameterNode] = {}
        self._code: dict[str, BundledFunction] = {}
        self._modules: dict[str, Any] = {}  # --param NAME holding a trace_nb.Module
        self._saved_modules: dict[str, dict] = {}  # values from a file, until the cell runs
        self._trial_depth = 0  # > 0 inside trial_runs()
        self._on_change = on_change or (lambda: None)

    # -- reading ----------------------------------------------------------------------
    def named_nodes(self) -> dict[str, ParameterNode]:
        """Readable name -> parameter node (``agent.act`` for a module's method): value
        parameters, code parameters, then modules' parameters."""
        nodes = dict(self._values)
        nodes.update({k: _code_node(b) for k, b in self._code.items()})
        if self._modules:
            from ..modules import module_parameters

            for name, obj in self._modules.items():
                nodes.update(module_parameters(obj, prefix=name))
        return nodes

    def nodes(self) -> list[ParameterNode]:
        """Every trainable node, in the order of :meth:`named_nodes`."""
        return list(self.named_nodes().values())

    def values(self) -> dict[str, Any]:
        """Current value of each parameter, by its readable name."""
        return {k: p.peek() for k, p in self.named_nodes().items()}

    def value_nodes(self) -> dict[str, ParameterNode]:
        """The value parameters (not code, not modules) by name (a copy)."""
        return dict(self._values)

    def code_functions(self) -> dict[str, BundledFunction]:
        """The ``--code`` functions by name (a copy); ``.function`` is what the notebook calls."""
        return dict(self._code)

    @property
    def modules(self) -> dict[str, Any]:
        """The modules whose parameters are trained, by notebook variable name (a copy)."""
        return dict(self._modules)

    def names(self) -> tuple[set[str], set[str]]:
        """(value parameters and modules, code parameters), counting module values that
        wait for their module."""
        return set(self._values) | set(self._modules) | set(self._saved_modules), set(self._code)

    def display_name(self, node: ParameterNode) -> str:
        """The readable name of a parameter node (``agent.act``), or its own name."""
        for k, p in self.named_nodes().items():
            if p is node:
                return k
        return node.name

    def find(self, name: str, session: str = "") -> ParameterNode:
        """The node of parameter ``name`` (a readable name or a node name); KeyError
        listing the parameters otherwise (``session`` names the session in it)."""
        if name in self._values:
            return self._values[name]
        if name in self._code:
            return _code_node(self._code[name])
        named = self.named_nodes()
        if name in named:
            return named[name]
        for p in named.values():
            if p.name == name:
                return p
        raise KeyError(
            f"{name!r} is not a parameter of session {session!r} "
            f"(parameters: {', '.join(self.values()) or 'none'})"
        )

    # -- what a cell run registers -------------------------------------------------------
    def parameter(
        self, name: str, value: Any, description: str | None = None, constraint: str | None = None
    ) -> ParameterNode:
        """The parameter ``name``, made from ``value`` the first time; later runs keep its
        value and update its description and constraint when given."""
        p = self._values.get(name)
        if p is None:
            p = ParameterNode(value, name=name, description=description, constraint=constraint)
            self._values[name] = p
            self._on_change()
        else:
            p.description = description or p.description
            p.constraint = constraint or p.constraint
        return p

    def register_module(self, name: str, obj: Any) -> Any:
        """Train module ``obj`` under the notebook name ``name``; returns ``obj``.

        A new instance (the cell ran again) gets the approved values of the one before;
        inside :meth:`trial_runs` it gets them for that run only and is not kept.
        """
        if self._modules.get(name) is obj:
            return obj
        from ..modules import load_state_dict, state_dict

        old = self._modules.get(name)
        if old is not None and self._trial_depth:
            load_state_dict(obj, state_dict(old))  # the values on trial, this run only
            return obj
        if old is not None:
            load_state_dict(obj, state_dict(old))
        elif name in self._saved_modules:  # values from a saved session
            load_state_dict(obj, self._saved_modules.pop(name))
        self._modules[name] = obj
        self._on_change()
        return obj

    def code_bundle(self, func: Any, code_names: Iterable[str]) -> BundledFunction | None:
        """The trainable version of ``func`` when its name is one of ``code_names`` (the
        cell's ``--code`` functions), made the first time; else None."""
        name = getattr(func, "__name__", None)
        if name not in set(code_names):
            return None
        b = self._code.get(name)
        if b is None:
            b = BundledFunction(func, trainable=True, allow_external_dependencies=True)
            self._code[name] = b
            self._on_change()
        return b

    def publish_code(self, namespace: dict[str, Any], node: ParameterNode | None = None) -> None:
        """Put the current version of each ``--code`` function (only ``node``'s, when
        given) into ``namespace``, so the notebook calls the approved code."""
        for name, b in self._code.items():
            if node is None or b.parameter is node:
                namespace[name] = b.function

    @contextmanager
    def trial_runs(self) -> Iterator[None]:
        """Runs of the cell inside this block change no parameter set: a module the cell
        builds anew gets the session module's values (a trial value included) for that
        run only, and the session keeps its module (and so its optimizer)."""
        self._trial_depth += 1
        try:
            yield
        finally:
            self._trial_depth -= 1

    def clear(self) -> None:
        """Forget every parameter, function and module."""
        self._values.clear()
        self._code.clear()
        self._modules.clear()
        self._on_change()

    # -- state ------------------------------------------------------------------------
    def to_state(self) -> dict[str, dict]:
        """JSON-ready ``parameters``, ``code`` and ``modules`` sections of a session file
        (module values that wait for their module are kept as they are)."""
        modules = dict(self._saved_modules)
        if self._modules:
            from ..modules import state_dict

            modules.update({k: state_dict(obj) for k, obj in self._modules.items()})
        return {
            "parameters": {
                k: {"value": p.peek(), "description": p.description, "constraint": p.constraint}
                for k, p in self._values.items()
            },
            "code": {k: {"source": _code_node(b).peek()} for k, b in self._code.items()},
            "modules": modules,
        }

    def load(
        self,
        parameters: dict[str, dict],
        functions: dict[str, tuple[Callable, str]],
        modules: dict[str, dict],
    ) -> None:
        """Fill an empty set from checked state: ``parameters`` as in :meth:`to_state`,
        ``functions`` name -> (compiled function, source), ``modules`` name -> values
        (kept until the cell registers the module)."""
        for k, rec in parameters.items():
            self._values[k] = ParameterNode(
                rec["value"],
                name=k,
                description=rec.get("description"),
                constraint=rec.get("constraint"),
            )
        for k, (fn, source) in functions.items():
            b = BundledFunction(fn, trainable=True, allow_external_dependencies=True)
            _code_node(b).set_value(source)
            self._code[k] = b
        self._saved_modules = dict(modules)
        self._on_change()

    def adopt(self, other: ParameterSet, namespace: dict[str, Any] | None) -> list[str]:
        """Take ``other``'s values, code and module values; return the names set.

        Code is recompiled in ``namespace`` (the notebook's, so it sees the notebook's
        helpers) and the new functions are put there. All or nothing: when code does not
        compile or a module refuses its values, this set is left as it was.
        """
        from ..graph import compile_function

        ns = namespace if namespace is not None else {"__name__": "__main__"}
        compiled = {
            k: (_code_node(b).peek(), compile_function(_code_node(b).peek(), k, ns))
            for k, b in other._code.items()
        }
        names = self._adopt_modules(dict(other._saved_modules))
        for k, p in other._values.items():
            mine = self._values.get(k)
            if mine is None:
                self._values[k] = mine = ParameterNode(
                    p.peek(), name=k, description=p.description, constraint=p.constraint
                )
            mine.set_value(p.peek())
        for k, (source, fn) in compiled.items():
            b = self._code.get(k)
            if b is None:
                self._code[k] = b = BundledFunction(
                    fn, trainable=True, allow_external_dependencies=True
                )
            _code_node(b).set_value(source)
            if namespace is not None:
                namespace[k] = b.function
        self._on_change()
        return [*other._values, *compiled, *names]

    def _adopt_modules(self, saved: dict[str, dict]) -> list[str]:
        """Load saved module values into this set's modules (or keep them until the cell
        registers the module); a module that refuses undoes the ones before it."""
        if not saved:
            return []
        from ..modules import load_state_dict, state_dict

        done: list[tuple[Any, dict]] = []
        try:
            for k, state in saved.items():
                if k in self._modules:
                    before = state_dict(self._modules[k])
                    load_state_dict(self._modules[k], state)
                    done.append((self._modules[k], before))
        except BaseException:
            for module, before in reversed(done):
                load_state_dict(module, before)
            raise
        self._saved_modules.update({k: v for k, v in saved.items() if k not in self._modules})
        return list(saved)
