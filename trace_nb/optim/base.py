"""What every optimizer shares: the propose -> review -> apply flow, the step log, and the
reply cap. :class:`~.optimizer.OptoPrime` and :class:`~.opro.OPRO` build on it."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..graph import Node, ParameterNode
from ..graph.names import NameTable, relabel
from . import prompts
from .approval import check_loads, needs_review
from .llm_call import ask, prewarm_openai, uses_openai
from .policy import HoldReason, decide
from .problem import ProblemInstance
from .proposal import Proposal
from .reply import parse_reply
from .states import DecisionSource, member


def _unique_labels(params: list[ParameterNode]) -> None:
    """Number repeated names among ``params`` in the order given (``x``, ``x`` -> ``x``, ``x_1``).

    Names are local to an optimizer: what else is alive in the process never matters.
    """
    labels = {p.name for p in params}
    if len(labels) == len(params):  # the common case: nothing to number
        return
    table = NameTable(first=params)
    for p in params:
        name = table.name(p)
        if name != p.name:
            relabel(p, name)


AUTO = "auto"
MIN_REPLY_TOKENS, MAX_REPLY_TOKENS = 1024, 4096


def reply_token_cap(params: Iterable[ParameterNode]) -> int:
    """The default cap on a reply's tokens (``max_tokens="auto"``).

    A reply holds its reasoning and every value it changes, so the cap is 1,024 tokens,
    raised for long text or code values (about 3 characters a token, plus 512), and never
    above 4,096. Without a cap one small-model reply ran for 322 s; with a fixed small one a
    long function could not be restated whole.
    """
    chars = 0
    for p in params:
        value = p.peek()
        chars += len(value) if isinstance(value, str) else len(repr(value)[:20_000])
    return max(MIN_REPLY_TOKENS, min(MAX_REPLY_TOKENS, 512 + chars // 3))


def _plain(value: Any) -> Any:
    """``value`` if JSON can hold it, else its ``repr``."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


@dataclass
class StepLog:
    """What one ``propose()`` sent and got back (for inspection and the history table)."""

    messages: list[dict]
    reply: str
    proposals: list[Proposal]
    usage: Any = None
    json_mode: str | None = None
    problem: ProblemInstance | None = field(default=None, repr=False)
    attempt: int = 1  # 2, 3...: a repair turn of the same step (see repair.py)

    def to_dict(self) -> dict:
        """JSON-ready record: the prompts, the reply and each proposal's outcome."""
        system = next((m["content"] for m in self.messages if m.get("role") == "system"), "")
        user = next((m["content"] for m in reversed(self.messages) if m.get("role") == "user"), "")
        usage = self.usage
        if usage is not None and not isinstance(usage, dict):
            usage = (
                {k: _plain(v) for k, v in vars(usage).items()}
                if hasattr(usage, "__dict__")
                else _plain(usage)
            )
        return {
            "system_prompt": system,
            "user_prompt": user,
            "response": self.reply,
            "json_mode": self.json_mode,
            "attempt": self.attempt,
            "usage": usage,
            "proposals": [
                {
                    "name": p.name,
                    "old": _plain(p.old),
                    "new": _plain(p.new),
                    "valid": p.valid,
                    "reason": p.reason,
                    "status": p.status,
                    "decided_by": p.decided_by,
                    "code": p.code.value if p.code else None,
                    "attempt": p.attempt,
                }
                for p in self.proposals
            ],
        }


class Optimizer:
    """Base optimizer over a list of trainable nodes.

    Subclasses implement :meth:`propose`. :meth:`apply` changes only valid proposals, so
    an invalid suggestion never touches a parameter; it is thread-safe and idempotent.

    Copying (``copy.deepcopy``) and pickling work whenever the LLM does: the lock is
    re-created, and a deep copy owns deep copies of the parameters.
    """

    def __init__(self, parameters: Iterable[ParameterNode]):
        params: list[ParameterNode] = []
        seen: set[ParameterNode] = set()  # identity-hashed (see apply)
        for p in parameters:
            if not getattr(p, "trainable", False):
                raise TypeError(f"{p!r} is not trainable; make it with node(..., trainable=True)")
            if p not in seen:  # the same node twice is one parameter
                seen.add(p)
                params.append(p)
        _unique_labels(params)
        self.parameters = params
        self.log: list[StepLog] = []
        self._lock = threading.RLock()

    # -- copying and pickling: the lock is per object and never travels ----------------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def __deepcopy__(self, memo: dict) -> Optimizer:
        new = object.__new__(type(self))
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new

    @property
    def by_name(self) -> dict[str, ParameterNode]:
        return {p.name: p for p in self.parameters}

    def zero_feedback(self) -> None:
        """Forget the feedback every parameter received (call before the next forward pass)."""
        for p in self.parameters:
            p.zero_feedback()

    def backward(
        self, node: Node, feedback: str = "", score: float | None = None, **kwargs: Any
    ) -> Any:
        """``node.backward(feedback, score)``: the reference Trace's ``optimizer.backward`` spelling."""
        return node.backward(feedback, score=score, **kwargs)

    def propose(self, **kwargs: Any) -> list[Proposal]:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(
        self, proposals: Iterable[Proposal], decided_by: str = "auto", approve_code: bool = False
    ) -> list[Proposal]:
        """Apply the valid, pending proposals; return those applied by this call.

        Code proposals follow :mod:`.approval`: with ``decided_by="auto"`` they stay pending
        unless ``approve_code=True``, and a code proposal that does not load (a failing
        import, a missing function) becomes invalid with the reason instead of being applied.

        Ownership is checked by identity (never the traced ``==``), in time linear in the
        number of parameters plus proposals. Deciding is atomic: when two threads apply the
        same proposal, one of them applies and records it, the other gets nothing back.
        Raises ValueError, changing nothing, when a proposal is for a node this optimizer
        does not own.
        """
        decided_by = member(DecisionSource, decided_by)  # a bad one changes nothing
        proposals = list(proposals)
        with self._lock:
            # Nodes hash by identity, and distinct live objects never share a hash, so set
            # membership never reaches the traced ``==`` (and makes no int per node).
            owned = set(self.parameters)
            todo = []
            for prop in proposals:
                param = prop.parameter
                if param is None or not prop.valid or prop.status != "pending":
                    continue
                if param not in owned:
                    raise ValueError(f"{prop.name!r} is not a parameter of this optimizer")
                todo.append(prop)
            todo = [p for p in todo if not needs_review(p, decided_by, approve_code)]
            todo = [p for p in todo if check_loads(p)]
            for prop in todo:
                prop.parameter.set_value(prop.new)
                prop.status = "approved"
                prop.decided_by = decided_by
            return todo

    def step(
        self, verbose: bool | str = False, approve_code: bool = False, **kwargs: Any
    ) -> list[Proposal]:
        """Propose and apply at once, with no human review, as :func:`.policy.decide` says.
        Value proposals are applied; code proposals only with ``approve_code=True``,
        otherwise they stay pending, with a warning, for :meth:`apply`
        ``(..., decided_by="human")`` or the panel. With several candidates
        (``candidates=k``) only the first (the lowest temperature) is applied; the others
        get the status ``"not_chosen"``. Use :meth:`propose` and :meth:`apply` to review
        everything first.

        ``verbose=True`` prints the prompt and the reply, ``verbose="output"`` the reply only.
        """
        proposals = self.propose(**kwargs)
        if verbose and self.log:
            entry = self.log[-1]
            if verbose != "output":
                for m in entry.messages:
                    print(f"--- {m['role']} ---\n{m['content']}")
            print(f"--- reply ---\n{entry.reply}")
        decision = decide(proposals, approve_code=approve_code)
        decision.mark_not_chosen()
        self.apply(decision.apply, approve_code=approve_code)
        waiting = decision.held(HoldReason.CODE)
        if waiting:
            import warnings

            warnings.warn(
                f"step() did not apply the LLM's code for "
                f"{', '.join(dict.fromkeys(p.name or '?' for p in waiting))}: "
                "code is applied only after review. Look at it, then call "
                "apply(proposals, decided_by='human'), or pass approve_code=True to step() to "
                "apply code unreviewed.",
                stacklevel=2,
            )
        return proposals

    def log_json(self) -> list[dict]:
        """The log as plain data (``json.dumps`` works on it), one dict per propose."""
        return [entry.to_dict() for entry in self.log]

    # -- shared by LLM optimizers ------------------------------------------------------
    def _setup_llm(self, llm: Any) -> None:
        self._llm = llm
        if uses_openai(llm):
            prewarm_openai()

    @property
    def llm(self) -> Any:
        """The LLM; ``LLM()`` from the environment is created on first use when none was given."""
        if self._llm is None:
            from ..llm import LLM

            self._llm = LLM()
        return self._llm

    def _ask(
        self,
        messages: list[dict],
        max_tokens: int | str | None = None,
        temperature: float | None = None,
    ) -> tuple[str, Any, str | None]:
        if isinstance(max_tokens, str):
            if max_tokens != AUTO:
                raise ValueError(
                    f"max_tokens must be a number of tokens, None or {AUTO!r}; got {max_tokens!r}"
                )
            max_tokens = reply_token_cap(self.parameters)
        types = {p.name: prompts.json_type(p.peek(), p.is_code) for p in self.parameters}
        names = list(types)

        def readable(text: str) -> bool:
            # Only a reply this optimizer can read goes into the response cache.
            return parse_reply(text, names).error is None

        answer = ask(
            self.llm,
            messages,
            prompts.reply_schema(types),
            max_tokens,
            cache_if=readable,
            temperature=temperature,
        )
        return answer.text, answer.usage, answer.json_mode
