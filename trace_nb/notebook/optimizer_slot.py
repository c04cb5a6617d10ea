"""A session's optimizer, made on first use from the magic's options
(:class:`OptimizerSlot`, a part of :class:`~.session.TraceSession`)."""

from __future__ import annotations

from typing import Any

from ..llm.default import default_llm

__all__ = ["OPTIMIZERS", "OptimizerSlot", "optimizer_kind"]

OPTIMIZERS = ("OptoPrime", "OPRO")  # what ``%%trace --optimizer`` may name


def optimizer_kind(name: str | None) -> str:
    """The optimizer ``name`` names (any case; None: OptoPrime); ValueError for others."""
    for kind in OPTIMIZERS:
        if (name or "OptoPrime").lower() == kind.lower():
            return kind
    raise ValueError(f"unknown optimizer {name!r}; use {' or '.join(OPTIMIZERS)}")


class OptimizerSlot:
    """Holds one optimizer: made on first use (:meth:`get`), dropped when the parameters
    change (:meth:`forget`), with memory loaded from a file kept until it is made.

    ``llm`` is the LLM the session was given (or made on first use): ``--llm VAR`` and
    the default LLM (``set_default_llm``) come before a new one.
    """

    def __init__(self) -> None:
        self._optimizer: Any = None
        self._pending_state: dict | None = None  # optimizer memory from a file
        self.llm: Any = None

    @property
    def current(self) -> Any:
        """The optimizer if it was made, else None (makes nothing)."""
        return self._optimizer

    def get(self, nodes: list, spec: Any, shell: Any) -> Any:
        """The optimizer over ``nodes``, made from ``spec`` (the magic's options) the first
        time, with any memory :meth:`keep_state` kept."""
        if self._optimizer is None:
            from ..optim import OPRO, OptoPrime

            kind = optimizer_kind(spec.optimizer if spec else None)
            llm = self.resolve_llm(spec, shell)
            if kind == "OPRO":
                self._optimizer = OPRO(nodes, llm=llm)
            else:
                self._optimizer = OptoPrime(
                    nodes,
                    llm=llm,
                    memory_size=(spec.memory if spec else 0) or 0,
                    candidates=getattr(spec, "candidates", 1) or 1,
                    repair=getattr(spec, "repair", 1),
                )
            if self._pending_state:
                self._optimizer.load_state(self._pending_state)
                self._pending_state = None
        return self._optimizer

    def set(self, optimizer: Any) -> None:
        """Use ``optimizer`` (None: make a new one on next use)."""
        self._optimizer = optimizer

    def forget(self) -> None:
        """Drop the optimizer (the parameters changed); its memory goes with it."""
        self._optimizer = None

    def resolve_llm(self, spec: Any, shell: Any) -> Any:
        """The LLM to optimize with: the given one, ``--llm VAR``, the default, or a new
        ``trace_nb.LLM`` for ``--model`` (kept)."""
        if self.llm is not None:
            return self.llm
        if spec is not None and spec.llm_var:
            ns = shell.user_ns if shell is not None else {}
            if spec.llm_var not in ns:
                raise NameError(f"--llm {spec.llm_var}: no variable of that name in the notebook")
            return ns[spec.llm_var]
        if default_llm() is not None:
            return default_llm()
        from ..llm import LLM

        self.llm = LLM(model=spec.model if spec else None)
        return self.llm

    # -- state ------------------------------------------------------------------------
    def state(self) -> dict | None:
        """The optimizer's memory as JSON-ready data (memory loaded and not yet given to
        an optimizer included); None when there is none."""
        if self._optimizer is not None:
            return self._optimizer.state() if hasattr(self._optimizer, "state") else None
        return self._pending_state

    def keep_state(self, state: dict | None) -> None:
        """Give ``state`` (memory from a file) to the next optimizer made; drops the
        current one."""
        self._pending_state = state
        self._optimizer = None
