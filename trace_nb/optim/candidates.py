"""Several candidate proposals in one step: k parallel calls at spread temperatures.

Each reply is read like a single one; its proposals carry ``candidate = i``. A candidate
whose suggestion repeats an earlier candidate's exactly is dropped (it adds nothing to
choose from). Every call is logged with its usage.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .parse import parse_reply
from .proposal import Proposal, proposals_from_reply


def temperatures(k: int, low: float, high: float) -> list[float]:
    """``k`` temperatures from ``low`` to ``high``, evenly spread (just ``low`` for one)."""
    if k == 1:
        return [low]
    return [round(low + (high - low) * i / (k - 1), 3) for i in range(k)]


def propose_candidates(
    opt: Any, messages: list[dict], problem: Any, params: dict[str, Any]
) -> list[Proposal]:
    """Ask ``opt.candidates`` times in parallel; return every candidate's proposals."""
    from .base import StepLog

    temps = temperatures(opt.candidates, *opt.temperatures)
    with ThreadPoolExecutor(
        max_workers=min(len(temps), 8), thread_name_prefix="trace_nb-candidate"
    ) as pool:
        answers = list(pool.map(lambda t: opt._ask(messages, opt.max_tokens, temperature=t), temps))
    out: list[Proposal] = []
    seen: set[str] = set()
    number = 0
    for text, usage, mode in answers:
        parsed = parse_reply(text, list(params))
        proposals = proposals_from_reply(parsed, params, text)
        opt.log.append(StepLog(messages, text, proposals, usage, mode, problem))
        key = _key(parsed.suggestion)
        if parsed.suggestion and key in seen:
            continue  # the same suggestion as an earlier candidate
        seen.add(key)
        for p in proposals:
            p.candidate = number
        out.extend(proposals)
        number += 1
    return out


def _key(suggestion: dict) -> str:
    try:
        return json.dumps(suggestion, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(sorted(suggestion.items(), key=lambda kv: str(kv[0])))
