"""A session's parameters: values, ``--code`` functions and modules, by their notebook names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..graph import BundledFunction, ParameterNode
from .locking import serialized as _serialized

if TYPE_CHECKING:
    from .session import TraceSession


class ParamsMixin:
    """The parameter registry of :class:`~.session.TraceSession`."""

    _params: dict[str, ParameterNode]
    _code: dict[str, BundledFunction]
    _modules: dict[str, Any]
    _trial_depth: int  # > 0 inside trial_runs()

    @property
    def parameter_nodes(self) -> list[ParameterNode]:
        """Every trainable node: value parameters, code parameters, then modules' parameters."""
        return list(self.named_parameter_nodes().values())

    def named_parameter_nodes(self) -> dict[str, ParameterNode]:
        """Readable name -> parameter node (``agent.act`` for a module's method)."""
        nodes = dict(self._params)
        nodes.update({k: b.parameter for k, b in self._code.items()})
        for name, obj in self._modules.items():
            from ..modules import module_parameters

            nodes.update(module_parameters(obj, prefix=name))
        return nodes

    @property
    def modules(self) -> dict[str, Any]:
        """The modules (``trace_nb.Module`` / ``@model`` instances) whose parameters this
        session trains, by their notebook variable names."""
        return dict(self._modules)

    @property
    def parameters(self) -> dict[str, Any]:
        """Current (approved) value of each parameter, by the name used in the cell."""
        return {k: p.peek() for k, p in self.named_parameter_nodes().items()}

    def display_name(self, node: ParameterNode) -> str:
        """The readable name of a parameter node (``agent.act``), or its own name."""
        for k, p in self.named_parameter_nodes().items():
            if p is node:
                return k
        return node.name

    def _parameter(
        self, name: str, value: Any, description: str | None, constraint: str | None
    ) -> ParameterNode:
        p = self._params.get(name)
        if p is None:
            p = ParameterNode(value, name=name, description=description, constraint=constraint)
            self._params[name] = p
            self._optimizer = None  # the parameter set changed
        else:
            p.description = description or p.description
            p.constraint = constraint or p.constraint
        return p

    @contextmanager
    def trial_runs(self) -> Iterator[None]:
        """Runs of the cell inside this block change no parameter set: a module the cell
        builds anew gets the values of the session's module (a trial value included) and
        is used for that run only; the session keeps its module and its optimizer, so
        pending proposals stay approvable (a preview runs the cell this way)."""
        self._trial_depth += 1
        try:
            yield
        finally:
            self._trial_depth -= 1

    def _register_module(self, name: str, obj: Any) -> Any:
        if self._modules.get(name) is not obj:
            from ..modules import load_state_dict, state_dict

            old = self._modules.get(name)
            if old is not None and self._trial_depth:
                load_state_dict(obj, state_dict(old))  # the values on trial, this run only
                return obj
            if old is not None:
                # Re-running the cell made a new instance: keep the approved values.
                load_state_dict(obj, state_dict(old))
            elif name in self._saved_modules:  # values from a saved session
                load_state_dict(obj, self._saved_modules.pop(name))
            self._modules[name] = obj
            self._optimizer = None
        return obj

    def _code_bundle(self, func: Any) -> BundledFunction | None:
        name = getattr(func, "__name__", None)
        if self.spec is None or name not in self.spec.code:
            return None
        b = self._code.get(name)
        if b is None:
            b = BundledFunction(func, trainable=True, allow_external_dependencies=True)
            self._code[name] = b
            self._optimizer = None
        return b

    @_serialized
    def adopt_state(self, loaded: TraceSession, shell: Any = None) -> list[str]:
        """Take parameter values, code, module values, history and optimizer memory from
        ``loaded`` (a session read from a file); return the names that were set.

        Code is recompiled in the notebook's namespace (``shell.user_ns``) so it sees the
        notebook's helpers, as the cell's own functions do. All or nothing: when code does
        not compile or a module refuses its values, this session is left as it was.
        """
        from ..graph import compile_function

        shell = shell or self.shell
        ns = shell.user_ns if shell is not None else {"__name__": "__main__"}
        # What can fail comes first: compiling code, then modules (undone if one refuses).
        compiled = {
            k: (b.parameter.peek(), compile_function(b.parameter.peek(), k, ns))
            for k, b in loaded._code.items()
        }
        module_names = self._adopt_modules(dict(loaded._saved_modules))
        names = []
        for k, p in loaded._params.items():
            mine = self._params.get(k)
            if mine is None:
                self._params[k] = mine = ParameterNode(
                    p.peek(), name=k, description=p.description, constraint=p.constraint
                )
            mine.set_value(p.peek())
            names.append(k)
        for k, (source, fn) in compiled.items():
            mine_b = self._code.get(k)
            if mine_b is None:
                self._code[k] = mine_b = BundledFunction(
                    fn, trainable=True, allow_external_dependencies=True
                )
            mine_b.parameter.set_value(source)
            if shell is not None:
                shell.user_ns[k] = mine_b.function
            names.append(k)
        names += module_names
        self.rows = list(loaded.rows)
        self.lineage = loaded.lineage
        self._pending_optimizer_state = loaded._pending_optimizer_state
        self._optimizer = None
        self.restorable = None
        self._notify("restore")
        return names

    def _adopt_modules(self, saved: dict[str, dict]) -> list[str]:
        """Load saved module values into this session's modules (or keep them until the
        cell registers the module); a module that refuses undoes the ones before it."""
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

    def differences(self) -> dict[str, tuple[Any, Any]]:
        """Parameters whose current value differs from the cell's source: name -> (cell, current)."""
        current = self.parameters
        return {
            k: (v, current[k])
            for k, v in self.cell_values.items()
            if k in current and v != current[k]
        }

    @_serialized
    def reset(self) -> None:
        """Forget parameters, proposals, history and lineage (``%%trace --reset``)."""
        from .lineage import Lineage

        self._params.clear()
        self._code.clear()
        self._modules.clear()
        self.proposals = []
        self.rows = []
        self.node_feedback = {}
        self.lineage = Lineage()
        self._optimizer = None

    def _find(self, name: str) -> ParameterNode:
        if name in self._params:
            return self._params[name]
        if name in self._code:
            return self._code[name].parameter
        named = self.named_parameter_nodes()
        if name in named:
            return named[name]
        for p in named.values():
            if p.name == name:
                return p
        raise KeyError(
            f"{name!r} is not a parameter of session {self.name!r} "
            f"(parameters: {', '.join(self.parameters) or 'none'})"
        )
