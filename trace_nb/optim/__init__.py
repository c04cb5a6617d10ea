"""Optimizers: OptoPrime and OPRO, with proposals a human can review before they apply."""

from __future__ import annotations

from .coerce import CoercionError, coerce_value, validate_code
from .optimizer import OPRO, ExtractionError, Optimizer, OptoPrime, StepLog
from .parse import ParsedReply, parse_reply
from .problem import ProblemInstance, build_problem
from .proposal import Proposal, check

__all__ = [
    "OPRO",
    "CoercionError",
    "ExtractionError",
    "Optimizer",
    "OptoPrime",
    "ParsedReply",
    "ProblemInstance",
    "Proposal",
    "StepLog",
    "build_problem",
    "check",
    "coerce_value",
    "parse_reply",
    "validate_code",
]
