"""The reference implementation (``trace-opt``, package ``opto``) as a benchmark method.

The task runs in trace_nb, exactly as for the other methods: the same program, the same
feedback text, the same student model, the same scoring. At each step the adapter copies
the part of trace_nb's graph that the feedback reached (parameters -> outputs) into opto's
own nodes, calls ``backward`` there with the same feedback text, and lets the reference's
``OptoPrime`` do the rest: its propagation, its prompt, its LLM call (its
``response_format={"type": "json_object"}`` and ``max_tokens``), its reply parsing and type
conversion. The values it proposes are then checked and applied like every method's
(:func:`trace_nb.optim.proposal.check`, code only when it compiles), and the mirror is
synchronized with what was applied.

Several outputs in one step (a BBH minibatch) are joined into one node with the feedback
of each, numbered, as the reference's minibatch trainer does: its ``OptoPrime`` cannot sum
different feedback texts.

``trace-opt`` pulls about 1.4 GB of dependencies, so it lives in its own virtual
environment: point ``$TRACE_NB_REFERENCE_PYTHON`` at that interpreter and each run goes
to a subprocess (``python -m trace_nb.bench.reference``) that imports this checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..llm.usage import Usage

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

PYTHON_ENV = "TRACE_NB_REFERENCE_PYTHON"
PACKAGE = "trace-opt==0.1.3.8"
ROOT = Path(__file__).resolve().parents[2]  # the directory holding trace_nb/


def reference_python() -> str | None:
    """The interpreter that has ``opto``: ``$TRACE_NB_REFERENCE_PYTHON``, else this one
    when it can import ``opto``, else None."""
    explicit = os.environ.get(PYTHON_ENV)
    if explicit:
        return explicit
    import importlib.util

    return sys.executable if importlib.util.find_spec("opto") else None


def unavailable() -> str | None:
    """None when the reference can run, else why not."""
    python = reference_python()
    if python is None:
        return (
            f"unavailable: trace-opt is not installed (install {PACKAGE} into its own venv "
            f"and set {PYTHON_ENV} to its python)"
        )
    if not Path(python).exists():
        return f"unavailable: {PYTHON_ENV}={python} does not exist"
    return None


def in_process() -> bool:
    import importlib.util

    return importlib.util.find_spec("opto") is not None


class ReferenceChat:
    """The callable the reference's ``OptoPrime`` uses as its LLM: an OpenAI client on the
    benchmark's endpoint, with the benchmark's model and temperature, counting tokens."""

    def __init__(self, llm: Any):
        from openai import OpenAI

        self.model = llm.model
        self.temperature = llm.temperature
        self.client = OpenAI(
            base_url=llm.base_url,
            api_key=os.environ.get("OPENAI_API_KEY") or "not-needed",
            timeout=llm.timeout,
            max_retries=2,
        )
        self.usage = Usage()

    def __call__(self, messages: list[ChatCompletionMessageParam], **options: Any) -> Any:
        options.setdefault("temperature", self.temperature)
        response = self.client.chat.completions.create(
            model=self.model, messages=messages, **options
        )
        counted = response.usage
        self.usage = self.usage + Usage(
            1,
            (counted.prompt_tokens or 0) if counted is not None else 0,
            (counted.completion_tokens or 0) if counted is not None else 0,
        )
        return response


class ReferenceOptimizer:
    """The reference ``OptoPrime`` over mirrors of trace_nb parameters (see the module doc)."""

    def __init__(
        self,
        parameters: list,
        llm: Any,
        objective: str,
        max_tokens: int | None,
        memory_size: int = 0,
    ):
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch at import
        # opto (trace-opt) lives in its own venv, not the one the type checker reads.
        from opto.optimizers import OptoPrime as RefOptoPrime  # pyright: ignore[reportMissingImports]
        from opto.trace.nodes import ParameterNode as RefParameter  # pyright: ignore[reportMissingImports]

        self.parameters = list(parameters)
        self.mirror: dict[int, Any] = {}
        for p in self.parameters:
            label = f"__code_{p.name}" if p.is_code else p.name
            self.mirror[id(p)] = RefParameter(
                p.peek(),
                name=label,
                trainable=True,
                description=p.description or None,
                constraint=p.constraint,
            )
        self.chat = ReferenceChat(llm)
        self.optimizer = RefOptoPrime(
            list(self.mirror.values()),
            llm=self.chat,
            objective=objective,
            max_tokens=max_tokens or 4096,
            memory_size=memory_size,
        )

    @property
    def extra_usage(self) -> Usage:
        return self.chat.usage

    def zero_feedback(self) -> None:
        for p in self.parameters:
            p.zero_feedback()
        self.optimizer.zero_feedback()

    # -- one step ------------------------------------------------------------------------
    def step(self) -> list:
        from ..optim.approval import check_loads
        from ..optim.proposal import Proposal, check
        from ..optim.states import DecisionSource, ProposalStatus

        self._mirror_and_backward()
        update = self.optimizer.propose()
        response = self.optimizer.log[-1]["response"] if self.optimizer.log else ""
        suggestion = self.optimizer.extract_llm_suggestion(response)
        proposals: list = []
        for p in self.parameters:
            ref = self.mirror[id(p)]
            if ref in update:
                prop = check(p, update[ref], raw=response)
                if prop.valid and check_loads(prop):
                    p.set_value(prop.new)
                    prop.status, prop.decided_by = ProposalStatus.APPROVED, DecisionSource.AUTO
                proposals.append(prop)
            elif ref.py_name in suggestion:  # the reference could not convert it
                proposals.append(
                    Proposal(
                        p.name,
                        p,
                        p.peek(),
                        suggestion[ref.py_name],
                        "",
                        response,
                        False,
                        "the reference could not convert the value to the variable's type",
                    )
                )
            # The mirror holds what was applied (ref is a node of the reference Trace, not
            # ours: its private field is that library's).
            ref._data = p.peek()
        known = {ref.py_name for ref in self.mirror.values()}
        for key in suggestion:
            if key not in known:  # the reference ignores it; it is still a wasted proposal
                proposals.append(
                    Proposal(
                        str(key),
                        None,
                        None,
                        suggestion[key],
                        "",
                        response,
                        False,
                        f"there is no variable named {str(key)!r} "
                        f"(variables: {', '.join(sorted(known))})",
                    )
                )
        if not proposals and not suggestion:
            reason = (
                "the reply suggests no changes"
                if '"suggestion"' in response
                else "no suggestion could be read from the reply"
            )
            proposals.append(Proposal.refusal("", response, reason))
        return proposals

    def _mirror_and_backward(self) -> None:
        # opto (trace-opt) lives in its own venv, not the one the type checker reads.
        from opto.trace.nodes import MessageNode as RefMessage  # pyright: ignore[reportMissingImports]
        from opto.trace.nodes import Node as RefNode  # pyright: ignore[reportMissingImports]

        from ..graph import ExceptionNode, MessageNode, on_paths, outputs_of, topo_ancestors

        params = [p for p in self.parameters if p.feedback]
        outputs = outputs_of(params)
        order = topo_ancestors(outputs)
        sub = on_paths(params, outputs, order=order)
        made: dict[int, Any] = {id(p): self.mirror[id(p)] for p in self.parameters}

        def mirrored(n: Any) -> Any:
            if id(n) not in made:  # a value the operations read: an input of the problem
                made[id(n)] = RefNode(n.peek(), name=n.name)
            return made[id(n)]

        for n in sub:
            if not isinstance(n, MessageNode) or id(n) in made:
                continue
            made[id(n)] = RefMessage(
                n.describe() if isinstance(n, ExceptionNode) else n.peek(),
                inputs=self._inputs(n, mirrored),
                description=f"[{n.op.name}] {n.op.description}",
                name=n.op.base_name,
            )
        feedback = {}
        for p in params:
            for rec in p.feedback:
                feedback.setdefault(id(rec.output), rec.describe())
        if len(outputs) == 1:
            made[id(outputs[0])].backward(feedback.get(id(outputs[0]), ""))
            return
        joined = RefMessage(
            "\n".join(f"ID [{i}]: {o.peek()}" for i, o in enumerate(outputs)),
            inputs={f"x{i}": made[id(o)] for i, o in enumerate(outputs)},
            description="[batchify] Join the outputs of the examples in this batch.",
            name="batchify",
        )
        joined.backward(
            "\n".join(f"ID [{i}]: {feedback.get(id(o), '')}" for i, o in enumerate(outputs))
        )

    @staticmethod
    def _inputs(n: Any, mirrored: Any) -> dict[str, Any]:
        """The operator's parents by argument name, the code parameter as ``__code``."""
        from ..graph import Node

        names = [a.lstrip("*") for a in n.op.arg_names]
        inputs: dict[str, Any] = {}
        given: set[int] = set()
        for i, a in enumerate(n.args):
            if isinstance(a, Node):
                key = names[i] if i < len(names) else f"arg{i}"
                inputs[key if key not in inputs else f"{key}{i}"] = mirrored(a)
                given.add(id(a))
        for k, v in (n.kwargs or {}).items():
            if isinstance(v, Node):
                inputs[k] = mirrored(v)
                given.add(id(v))
        for p in n._parents:
            if id(p) not in given:
                inputs["__code" if getattr(p, "is_code", False) else f"uses_{p.name}"] = mirrored(p)
        return inputs


# -- a run in the reference's own environment ---------------------------------------------


def run_in_subprocess(
    task: str,
    method: Any,
    seed: int,
    steps: int,
    llm: Any,
    *,
    offline: bool,
    max_tokens: int | None,
    deadline: float | None,
) -> dict[str, Any]:
    """:func:`~trace_nb.bench.runner.run_one` under ``$TRACE_NB_REFERENCE_PYTHON``."""
    job = {
        "task": task,
        "method": method.name,
        "seed": seed,
        "steps": steps,
        "offline": offline,
        "max_tokens": max_tokens,
        "seconds_left": None if deadline is None else deadline - time.monotonic(),
    }
    if llm is not None:
        job.update(
            model=llm.model, base_url=llm.base_url, temperature=llm.temperature, timeout=llm.timeout
        )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    python = reference_python()
    if python is None:
        raise RuntimeError(f"the reference cannot run here: {unavailable()}")
    done = subprocess.run(
        [python, "-m", "trace_nb.bench.reference"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the reference run failed ({done.returncode}): {done.stderr[-1500:]}")
    return json.loads(lines[-1])


def main() -> int:
    import warnings

    warnings.filterwarnings("ignore")
    if not in_process():  # else run_one would start this subprocess again, and again
        print(
            f"{PYTHON_ENV}={sys.executable} cannot import opto: install {PACKAGE} into that "
            "venv, or point the variable at the python of the venv that has it",
            file=sys.stderr,
        )
        return 2
    job = json.loads(sys.stdin.read())
    from .runner import run_one

    llm = None
    if not job["offline"]:
        from ..llm import LLM

        llm = LLM(
            model=job["model"],
            base_url=job["base_url"],
            cache=False,
            temperature=job["temperature"],
            timeout=job["timeout"],
        )
    left = job.get("seconds_left")
    record = run_one(
        job["task"],
        job["method"],
        job["seed"],
        job["steps"],
        llm,
        offline=job["offline"],
        max_tokens=job["max_tokens"],
        deadline=None if left is None else time.monotonic() + left,
    )
    print(json.dumps(record, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
