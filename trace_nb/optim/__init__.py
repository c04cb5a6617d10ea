"""Optimizers: OptoPrime and OPRO, with proposals a human can review before they apply."""

from __future__ import annotations

from ..errors import CoercionError, ExtractionError
from .base import Optimizer, StepLog
from .codecheck import validate_code
from .coerce import coerce_value
from .opro import OPRO
from .optimizer import OptoPrime
from .problem import ProblemInstance, build_problem
from .proposal import Proposal, check
from .reply import ParsedReply, parse_reply

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
