"""Optimizers: the propose -> review -> apply flow, and OptoPrime itself."""

from __future__ import annotations

import copy
import json
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..graph import Node, ParameterNode
from ..graph.names import NameTable, index_parameter
from . import prompts
from .approval import check_loads, held, needs_review
from .llm_call import ask, prewarm_openai, uses_openai
from .parse import parse_reply
from .problem import ProblemInstance, build_problem, feedback_text, normalize_mask
from .proposal import Proposal, proposals_from_reply


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
            p._base = name
            index_parameter(name, p)


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
        value = p._data
        chars += len(value) if isinstance(value, str) else len(repr(value)[:20_000])
    return max(MIN_REPLY_TOKENS, min(MAX_REPLY_TOKENS, 512 + chars // 3))


class ExtractionError(ValueError):
    """The LLM's reply held no usable suggestion (raised when ``ignore_extraction_error=False``)."""


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
                prop.parameter._set(prop.new)
                prop.status = "approved"
                prop.decided_by = decided_by
            return todo

    def step(
        self, verbose: bool | str = False, approve_code: bool = False, **kwargs: Any
    ) -> list[Proposal]:
        """Propose and apply at once, with no human review. Value proposals are applied;
        code proposals only with ``approve_code=True`` (see :mod:`.approval`), otherwise they
        stay pending, with a warning, for :meth:`apply` ``(..., decided_by="human")`` or the
        panel. Use :meth:`propose` and :meth:`apply` to review everything first.

        ``verbose=True`` prints the prompt and the reply, ``verbose="output"`` the reply only.
        """
        proposals = self.propose(**kwargs)
        if verbose and self.log:
            entry = self.log[-1]
            if verbose != "output":
                for m in entry.messages:
                    print(f"--- {m['role']} ---\n{m['content']}")
            print(f"--- reply ---\n{entry.reply}")
        waiting = held(proposals, "auto", approve_code)
        self.apply(proposals, approve_code=approve_code)
        if waiting:
            import warnings

            warnings.warn(
                f"step() did not apply the LLM's code for {', '.join(p.name or '?' for p in waiting)}: "
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
        if max_tokens == AUTO:
            max_tokens = reply_token_cap(self.parameters)
        types = {p.name: prompts.json_type(p._data, p.is_code) for p in self.parameters}
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


class OptoPrime(Optimizer):
    """The OptoPrime optimizer: the LLM reads the trace subgraph and the feedback.

    Parameters
    ----------
    parameters
        Trainable nodes to optimize.
    llm
        A :class:`trace_nb.llm.LLM`, anything with its ``chat`` method, or any callable
        taking ``messages=[...]`` and returning an OpenAI-style response (see
        :mod:`.llm_call`); defaults to ``LLM()`` configured from the environment, created
        on first use.
    memory_size
        How many past (variables, feedback) pairs to show the LLM.
    objective
        Replaces the default #Instruction text.
    prompt_budget
        Maximum characters of the problem instance (None: no limit). Variables,
        constraints, outputs and feedback are always kept.
    max_tokens
        Cap on the reply's tokens, per call: ``"auto"`` (default) is 1,024, more when the
        variables are long (see :func:`reply_token_cap`); None: no cap (the LLM's default).
    ignore_extraction_error
        True: a reply with no readable suggestion gives an invalid proposal saying why.
        False: it raises :class:`ExtractionError`.
    include_example
        Show the LLM one worked example problem and answer in the system prompt.
    candidates
        Ask for this many alternative proposals at once (parallel calls, temperatures spread
        over ``temperatures``); each proposal carries its ``candidate`` number and a person
        (or a review rule) picks one, as with the reference's OptoPrimeMulti.
    """

    def __init__(
        self,
        parameters: Iterable[ParameterNode],
        llm: Any = None,
        memory_size: int = 0,
        objective: str | None = None,
        prompt_budget: int | None = 30_000,
        max_tokens: int | str | None = AUTO,
        ignore_extraction_error: bool = True,
        include_example: bool = False,
        candidates: int = 1,
        temperatures: tuple[float, float] = (0.0, 1.0),
        **reference_options: Any,
    ):
        _refuse_reference_options(reference_options)
        super().__init__(parameters)
        self._setup_llm(llm)
        self.memory: deque[dict] = deque(maxlen=memory_size or None)
        self.memory_size = memory_size
        self.objective = objective or prompts.OPTOPRIME_INSTRUCTION
        self.prompt_budget = prompt_budget
        self.max_tokens = max_tokens
        self.ignore_extraction_error = ignore_extraction_error
        self.include_example = include_example
        if int(candidates) < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        self.candidates, self.temperatures = int(candidates), temperatures

    def problem(self) -> ProblemInstance:
        """The problem instance for the parameters that received feedback."""
        params = [p for p in self.parameters if p._feedback]
        return build_problem(params, self.prompt_budget, self.objective, first=self.parameters)

    def messages(
        self, problem: ProblemInstance | None = None, mask: Iterable[str] | None = None
    ) -> list[dict]:
        """The chat messages ``propose()`` would send now; ``mask`` blanks sections."""
        problem = problem or self.problem()
        user = problem.render(mask)
        if self.memory_size and self.memory:
            past = "\n".join(json.dumps(m, default=repr) for m in self.memory)
            user = f"{prompts.MEMORY_HEADER}\n{past}\n\nNow the current problem:\n\n{user}"
        system = prompts.OPTOPRIME_SYSTEM
        if self.include_example:
            system = f"{system}\n\n{prompts.OPTOPRIME_EXAMPLE}"
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def propose(self, mask: Iterable[str] | None = None) -> list[Proposal]:
        """Ask the LLM for new values; every suggestion comes back checked, nothing changes.

        ``mask`` names sections to leave empty (``["#Code", "#Documentation"]``), as in the
        paper's "Trace masked" ablation. Malformed replies give invalid proposals with a
        reason (or raise :class:`ExtractionError` when ``ignore_extraction_error`` is
        False); LLM access errors (after retries) raise :class:`trace_nb.llm.LLMError`
        and change nothing.
        """
        mask = normalize_mask(mask)
        problem = self.problem()
        messages = self.messages(problem, mask)
        params = {p.name: p for p in self.parameters}
        if self.candidates > 1:
            from .candidates import propose_candidates

            proposals = propose_candidates(self, messages, problem, params)
            parsed = None
        else:
            text, usage, mode = self._ask(messages, self.max_tokens)
            parsed = parse_reply(text, list(params))
            proposals = proposals_from_reply(parsed, params, text)
            self.log.append(StepLog(messages, text, proposals, usage, mode, problem))
        if self.memory_size:
            variables = {p.name: p._data for p in self.parameters if p._feedback}
            self.memory.append({"variables": variables, "feedback": problem.feedback})
        if not self.ignore_extraction_error and parsed and parsed.error and not parsed.suggestion:
            raise ExtractionError(f"no suggestion could be read from the reply: {parsed.error}")
        return proposals

    def state(self) -> dict:
        """JSON-ready optimizer state (memory), for checkpoints."""
        return {"memory": list(self.memory)}

    def load_state(self, state: dict) -> None:
        self.memory.clear()
        self.memory.extend(state.get("memory", []))


_REFERENCE_OPTIONS = {
    "propagator": "trace_nb has one propagation (the minimal subgraph from each parameter "
    "to the outputs); leave propagator out",
    "prompt_symbols": "the section names are fixed; blank sections with step(mask=[...])",
    "log": "the log is always kept: optimizer.log, or optimizer.log_json() as plain data",
}


def _refuse_reference_options(options: dict) -> None:
    """Unknown keyword arguments: say what trace_nb offers instead of a bare TypeError."""
    for key in options:
        hint = _REFERENCE_OPTIONS.get(key, "see help(trace_nb.OptoPrime) for the options")
        raise TypeError(f"OptoPrime got an unexpected option {key!r}: {hint}")


class OPRO(Optimizer):
    """OPRO baseline: the LLM sees only the history of values and their feedback/scores."""

    def __init__(
        self,
        parameters: Iterable[ParameterNode],
        llm: Any = None,
        objective: str | None = None,
        history_size: int = 20,
        max_tokens: int | str | None = AUTO,
    ):
        super().__init__(parameters)
        self._setup_llm(llm)
        self.max_tokens = max_tokens  # as OptoPrime's
        self.objective = objective or prompts.OPRO_DEFAULT_OBJECTIVE
        self.history: deque[dict] = deque(maxlen=history_size)

    def messages(self) -> list[dict]:
        params = [p for p in self.parameters if p._feedback]
        if not params:
            raise ValueError("no parameter has feedback: call output.backward(feedback) first")
        _, feedback = feedback_text(params)
        current = {p.name: p._data for p in self.parameters}
        self._pending = {"variables": current, "feedback": feedback}
        lines = [f"#Objective\n{self.objective}", "#History"]
        lines += [json.dumps(h, default=repr) for h in self.history] or ["(none yet)"]
        lines += [
            "#Current values",
            json.dumps(current, default=repr),
            "#Feedback on the current values",
            feedback,
        ]
        return [
            {"role": "system", "content": prompts.OPRO_SYSTEM},
            {"role": "user", "content": "\n".join(lines)},
        ]

    def propose(self) -> list[Proposal]:
        messages = self.messages()
        params = {p.name: p for p in self.parameters}
        text, usage, mode = self._ask(messages, self.max_tokens)
        proposals = proposals_from_reply(parse_reply(text, list(params)), params, text)
        self.history.append(self._pending)
        self.log.append(StepLog(messages, text, proposals, usage, mode))
        return proposals

    def state(self) -> dict:
        return {"history": list(self.history)}

    def load_state(self, state: dict) -> None:
        self.history.clear()
        self.history.extend(state.get("history", []))
