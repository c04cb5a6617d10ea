"""The problem instance OptoPrime shows the LLM, built from the propagated subgraph.

One walk (:func:`~trace_nb.graph.on_paths`) gives the nodes between the parameters and the
outputs. Large graphs are fitted into a character budget: the variables, their
constraints, the outputs and the feedback are always kept; operations are kept in order
of their distance to the nearest variable or output, and the prompt says what was left out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field

from ..graph import MessageNode, Node, ParameterNode, on_paths, outputs_of, topo_ancestors
from ..graph.names import NameTable
from . import prompts
from .lines import (
    ARG_SHARE,
    VALUE_SHARE,
    Names,
    _own_name,
    code_line,
    value_line,
)


@dataclass
class ProblemInstance:
    """The sections of one OptoPrime prompt, plus a note of what the budget left out."""

    instruction: str
    code: str
    documentation: str
    variables: str
    constraints: str
    inputs: str
    others: str
    outputs: str
    feedback: str
    omitted: str = ""
    stats: dict = field(default_factory=dict)
    #: name in the prompt -> parameter, to read the reply back (not part of the text)
    parameters: dict[str, ParameterNode] = field(default_factory=dict, repr=False)

    def render(self, mask: Iterable[str] | None = None) -> str:
        """The prompt text; sections named in ``mask`` (see :func:`normalize_mask`) are left empty."""
        hidden = set(normalize_mask(mask))
        parts = []
        for name in prompts.SECTIONS:
            body = "" if name in hidden else getattr(self, name.lower())
            if name == "Code" and self.omitted and name not in hidden:
                body = f"{body}\n({self.omitted})" if body else f"({self.omitted})"
            parts.append(f"#{name}\n{body}")
        return "\n\n".join(parts)


def normalize_mask(mask: Iterable[str] | None) -> list[str]:
    """Section names to blank, as spelled in :data:`prompts.SECTIONS` (``"#code"`` -> ``"Code"``).

    Raises ValueError for a name that is not a section.
    """
    if mask is None:
        return []
    if isinstance(mask, str):
        mask = [mask]
    known = {s.lower(): s for s in prompts.SECTIONS}
    out = []
    for item in mask:
        key = str(item).strip().lstrip("#").strip().lower()
        if key not in known:
            raise ValueError(
                f"cannot mask {item!r}: the sections are "
                f"{', '.join('#' + s for s in prompts.SECTIONS)}"
            )
        out.append(known[key])
    return out


def feedback_text(
    params: list[ParameterNode],
    names: Names = _own_name,
) -> tuple[list[Node], str]:
    """The outputs that sent feedback to ``params`` and the #Feedback section for them."""
    outputs = outputs_of(params)
    records = {}
    for p in params:
        for rec in p.feedback:
            records.setdefault(id(rec.output), []).append(rec)
    lines = []
    for out in outputs:
        seen = set()
        texts = []
        for rec in records.get(id(out), ()):
            if id(rec) not in seen:
                seen.add(id(rec))
                texts.append(rec.describe())
        text = "\n".join(texts)
        lines.append(text if len(outputs) == 1 else f"{names(out)}: {text}")
    return outputs, "\n".join(lines)


def build_problem(
    params: list[ParameterNode],
    budget: int | None = 30_000,
    instruction: str = prompts.OPTOPRIME_INSTRUCTION,
    first: Sequence[Node] = (),
) -> ProblemInstance:
    """The problem instance for ``params`` (which must have received feedback).

    Names come from one :class:`~trace_nb.graph.names.NameTable` over the outputs' graph,
    with ``first`` (all of an optimizer's parameters, which include ``params``; default
    ``params``) named first: they depend on this graph only, never on other live nodes.
    ``ProblemInstance.parameters`` maps the names back to the parameters.
    """
    outputs = outputs_of(params)
    if not outputs:
        raise ValueError(
            "none of the parameters has received feedback: run the code, then call "
            "output.backward(feedback) (or give feedback in the panel) before asking for a step"
        )
    order = topo_ancestors(outputs)
    table = NameTable(order, first=first or params)
    names = table.name
    _, feedback = feedback_text(params, names)
    param_ids = {id(p) for p in params}
    out_ids = {id(o) for o in outputs}
    sub = on_paths(params, outputs, order=order)
    in_sub = {id(n) for n in sub}
    ops = [n for n in sub if isinstance(n, MessageNode)]

    variables = "\n".join(value_line(p, None, names) for p in params)
    constraints = "\n".join(f"{names(p)}: {p.constraint}" for p in params if p.constraint)
    limit, arg_limit = _limits(
        ops,
        outputs,
        budget,
        in_sub,
        param_ids,
        names,
        len(instruction) + len(variables) + len(constraints) + len(feedback),
    )
    out_text = "\n".join(value_line(o, limit, names) for o in outputs)

    fixed = len(instruction) + len(variables) + len(constraints) + len(out_text) + len(feedback)
    chosen = _fit(
        ops,
        params,
        outputs,
        budget - fixed - 400 if budget else None,
        in_sub,
        param_ids,
        names,
        limit,
        arg_limit,
        table,
    )

    code_lines, docs, inputs, others = [], {}, {}, []
    skipped = 0
    for n in ops:
        if id(n) not in chosen:
            skipped += 1
            continue
        if skipped:  # mark where operations were left out
            code_lines.append(f"# ... {skipped} operations not shown ...")
            skipped = 0
        code_lines.append(code_line(n, names, arg_limit, table))
        docs.setdefault(n.op.name, n.op.doc())
        for p in n._parents:
            if id(p) not in in_sub and id(p) not in param_ids:
                inputs.setdefault(id(p), value_line(p, limit, names))
        if id(n) not in out_ids:
            others.append(value_line(n, limit, names))
    if skipped:
        code_lines.append(f"# ... {skipped} operations not shown ...")
    omitted = ""
    if len(chosen) < len(ops):
        omitted = (
            f"{len(ops) - len(chosen)} of {len(ops)} operations are not shown to fit the "
            f"prompt budget; shown are those nearest to the variables and outputs"
        )
    return ProblemInstance(
        instruction=instruction,
        code="\n".join(code_lines),
        documentation="\n".join(docs.values()),
        variables=variables,
        constraints=constraints,
        inputs="\n".join(inputs.values()),
        others="\n".join(others),
        outputs=out_text,
        feedback=feedback,
        omitted=omitted,
        stats={"operations": len(ops), "shown": len(chosen), "outputs": len(outputs)},
        parameters={names(p): p for p in params},
    )


def _limits(
    ops: list[MessageNode],
    outputs: list[Node],
    budget: int | None,
    in_sub: set[int],
    param_ids: set[int],
    names: Names,
    fixed: int,
) -> tuple[int | None, int | None]:
    """The cuts for values and inline constants: none when everything fits ``budget``
    uncut (or there is no budget), else :data:`VALUE_SHARE` and :data:`ARG_SHARE` of it."""
    if budget is None:
        return None, None
    total = fixed + sum(len(value_line(o, None, names)) for o in outputs)
    seen: set[int] = set()
    for n in ops:
        total += len(code_line(n, names)) + len(n.op.doc()) // 4 + 1
        total += len(value_line(n, None, names))
        for p in n._parents:
            if id(p) not in in_sub and id(p) not in param_ids and id(p) not in seen:
                seen.add(id(p))
                total += len(value_line(p, None, names))
        if total > budget:
            return max(budget // VALUE_SHARE, 80), max(budget // ARG_SHARE, 20)
    return None, None


def _fit(
    ops: list[MessageNode],
    params: list[ParameterNode],
    outputs: list[Node],
    budget: int | None,
    in_sub: set[int],
    param_ids: set[int],
    names: Names = _own_name,
    limit: int | None = None,
    arg_limit: int | None = None,
    taken: Container[str] = (),
) -> set[int]:
    """Ids of the operations to show: all of them, or the nearest ones that fit ``budget``."""
    if budget is None:
        return {id(n) for n in ops}
    cost = {}
    total = 0
    for n in ops:
        c = len(code_line(n, names, arg_limit, taken)) + len(n.op.doc()) // 4 + 1
        c += sum(
            len(value_line(p, limit, names))
            for p in n._parents
            if id(p) not in in_sub and id(p) not in param_ids
        )
        c += len(value_line(n, limit, names))
        cost[id(n)] = c
        total += c
    if total <= budget:
        return set(cost)
    dist = _distances(ops, params, outputs, in_sub)
    chosen: set[int] = set()
    used = 0
    for n in sorted(ops, key=lambda n: dist.get(id(n), 1 << 30)):
        c = cost[id(n)]
        if used + c > budget:
            continue
        chosen.add(id(n))
        used += c
    return chosen


def _distances(
    ops: list[MessageNode], params: list[ParameterNode], outputs: list[Node], in_sub: set[int]
) -> dict[int, int]:
    """Hops from the nearest parameter (forward) or output (backward), inside the subgraph."""
    children: dict[int, list[Node]] = {}
    for n in ops:
        for p in n._parents:
            if id(p) in in_sub:
                children.setdefault(id(p), []).append(n)
    dist: dict[int, int] = {}
    queue = deque()
    for s in list(params) + list(outputs):
        dist[id(s)] = 0
        queue.append(s)
    while queue:
        n = queue.popleft()
        d = dist[id(n)] + 1
        neighbours = children.get(id(n), []) + [p for p in n._parents if id(p) in in_sub]
        for m in neighbours:
            if id(m) not in dist:
                dist[id(m)] = d
                queue.append(m)
    return dist
