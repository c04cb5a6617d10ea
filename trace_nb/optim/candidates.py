"""Several candidate proposals in one step: k parallel calls at spread temperatures.

Each reply is read like a single one, with its own repair turns (:mod:`.repair`); its
proposals carry ``candidate = i``. A candidate whose suggestion repeats an earlier
candidate's exactly is dropped (it adds nothing to choose from). Every call is logged with
its usage.

An LLM object whose ``chat`` takes no ``temperature`` (the documented
``chat(messages, json_schema=, max_tokens=)`` interface) is asked k times at its own
temperature, with a warning: the candidates may then repeat each other, and repeats are
dropped.
"""

from __future__ import annotations

import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .llm_call import takes_temperature
from .proposal import Proposal
from .repair import ask_with_repair


def temperatures(k: int, low: float, high: float) -> list[float]:
    """``k`` temperatures from ``low`` to ``high``, evenly spread (just ``low`` for one)."""
    if k == 1:
        return [low]
    return [round(low + (high - low) * i / (k - 1), 3) for i in range(k)]


def propose_candidates(
    opt: Any, messages: list[dict], problem: Any, params: dict[str, Any]
) -> tuple[list[Proposal], list[list[Proposal]]]:
    """Ask ``opt.candidates`` times in parallel; return every candidate's proposals, and
    every attempt's proposals (for :class:`~.repair.Attempts`)."""
    temps = temperatures(opt.candidates, *opt.temperatures)
    if not takes_temperature(opt.llm):  # ask() then leaves the temperature out
        warnings.warn(
            f"the optimizer's LLM ({type(opt.llm).__name__}) takes no temperature, so the "
            f"{opt.candidates} candidates are asked at its own temperature and may repeat "
            "each other (repeats are dropped); give its chat() a temperature= argument to "
            "spread them",
            stacklevel=3,
        )
    repair = getattr(opt, "repair", 0)
    with ThreadPoolExecutor(
        max_workers=min(len(temps), 8), thread_name_prefix="trace_nb-candidate"
    ) as pool:
        answers = list(
            pool.map(
                lambda t: ask_with_repair(opt, messages, params, problem, repair, temperature=t),
                temps,
            )
        )
    out: list[Proposal] = []
    attempts: list[list[Proposal]] = []
    seen: set[str] = set()
    number = 0
    for answered in answers:
        opt.log.extend(answered.logs)
        attempts.extend(answered.attempts)
        suggestion = answered.parsed.suggestion
        key = _key(suggestion)
        if suggestion and key in seen:
            continue  # the same suggestion as an earlier candidate
        seen.add(key)
        for p in answered.proposals:
            p.candidate = number
        out.extend(answered.proposals)
        number += 1
    return out, attempts


def _key(suggestion: dict) -> str:
    try:
        return json.dumps(suggestion, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(sorted(suggestion.items(), key=lambda kv: str(kv[0])))
